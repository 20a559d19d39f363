-- supabase-user-sync 3/8: the audit trail, an append-only record of every change the sync makes
-- to public.users. Off by default; switched on by data:
--   update user_sync.audit_settings set enabled = true;
--
-- One trigger on public.users writes it, with the row's old and new values. The sync functions
-- name themselves in the transaction-local setting `user_sync.source` around each write and
-- clear it after; writes made with no source set (a user editing their profile, a cascade
-- from auth.users, plain SQL) are not the sync's doing and are not recorded.

create table user_sync.audit_settings (
  singleton boolean primary key default true check (singleton),
  enabled boolean not null default false,
  -- Email and phone are personal data: by default the trail names them when they change but
  -- keeps their values out. Set true to record old and new values of these too.
  record_contact_values boolean not null default false,
  updated_at timestamptz not null default now()
);
comment on table user_sync.audit_settings is
  'One row. enabled: write public.user_sync_audit. record_contact_values: also record old and new email/phone values (otherwise only that they changed).';
insert into user_sync.audit_settings default values;
alter table user_sync.audit_settings enable row level security;
revoke all on table user_sync.audit_settings from public, anon, authenticated, service_role;

create table public.user_sync_audit (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  user_id uuid not null,
  -- Which path made the change: trigger, hook:<name>, webhook, resync, self_heal
  -- (sync_my_user), sync_user (a direct call of public.sync_user).
  source text not null,
  action text not null check (action in ('inserted', 'updated', 'deleted', 'failed')),
  -- The public.users columns that changed (all the row's non-null columns for an insert).
  changed_columns text[] not null default '{}',
  -- Old and new values of the changed columns; email and phone only when
  -- audit_settings.record_contact_values is on.
  old_values jsonb,
  new_values jsonb,
  -- For action 'failed': the error's SQLSTATE (its message is in user_sync.sync_failures).
  sqlstate text
);
comment on table public.user_sync_audit is
  'Append-only record of every change supabase-user-sync makes to public.users. Off by default (user_sync.audit_settings). Readable by service_role only; prune with user_sync.prune_audit(interval).';
-- Pruning by age reads a BRIN range, which costs next to nothing to maintain on insert.
create index user_sync_audit_occurred_at on public.user_sync_audit using brin (occurred_at);
create index user_sync_audit_user_id on public.user_sync_audit (user_id);

alter table public.user_sync_audit enable row level security;
revoke all on table public.user_sync_audit from public, anon, authenticated, service_role;
-- Supabase's default privileges grant every new sequence in public to the API roles, which
-- would let anon setval() the audit ids.
revoke all on sequence public.user_sync_audit_id_seq
  from public, anon, authenticated, service_role;
-- Readable through the API by the service role only (it bypasses RLS); written only by the
-- functions below (owned by the migration role); nobody else may update or delete it.
grant select on table public.user_sync_audit to service_role;

-- Whether the trail is on: a one-row primary-key probe. Read by the switch below and by
-- user_sync.record_failure.
create function user_sync.audit_enabled()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce((select s.enabled from user_sync.audit_settings s where s.singleton), false);
end;
$$;

-- The audit trigger's function: an audited write costs one insert. Everything but the insert
-- is plain expressions over OLD and NEW, and the insert reads the settings itself: no helper
-- function, no query over jsonb_each, no second statement per row (an audited sign-up is one
-- of the measured paths, BENCHMARKS.md).
--
-- OLD is null in an INSERT trigger and NEW in a DELETE trigger, so "old.c is distinct from
-- new.c" says, for each column: set to a value (insert), had one (delete), changed (update).
create function user_sync.on_users_write()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Every audited column, alphabetical (changed_columns keeps this order).
  v_changed text[] := array_remove(array[
    case when old.avatar_url is distinct from new.avatar_url then 'avatar_url' end,
    case when old.created_at is distinct from new.created_at then 'created_at' end,
    case when old.deleted_at is distinct from new.deleted_at then 'deleted_at' end,
    case when old.email is distinct from new.email then 'email' end,
    case when old.email_confirmed_at is distinct from new.email_confirmed_at
      then 'email_confirmed_at' end,
    case when old.full_name is distinct from new.full_name then 'full_name' end,
    case when old.is_anonymous is distinct from new.is_anonymous then 'is_anonymous' end,
    case when old.phone is distinct from new.phone then 'phone' end,
    case when old.role is distinct from new.role then 'role' end
  ], null);
  v_unchanged text[] := array_remove(array[
    case when old.avatar_url is not distinct from new.avatar_url then 'avatar_url' end,
    case when old.created_at is not distinct from new.created_at then 'created_at' end,
    case when old.deleted_at is not distinct from new.deleted_at then 'deleted_at' end,
    case when old.email is not distinct from new.email then 'email' end,
    case when old.email_confirmed_at is not distinct from new.email_confirmed_at
      then 'email_confirmed_at' end,
    case when old.full_name is not distinct from new.full_name then 'full_name' end,
    case when old.is_anonymous is not distinct from new.is_anonymous then 'is_anonymous' end,
    case when old.phone is not distinct from new.phone then 'phone' end,
    case when old.role is not distinct from new.role then 'role' end
  ], null);
  v_old jsonb;
  v_new jsonb;
begin
  if tg_op <> 'INSERT' then
    v_old := jsonb_build_object('avatar_url', old.avatar_url, 'created_at', old.created_at,
      'deleted_at', old.deleted_at, 'email', old.email,
      'email_confirmed_at', old.email_confirmed_at, 'full_name', old.full_name,
      'is_anonymous', old.is_anonymous, 'phone', old.phone, 'role', old.role) - v_unchanged;
  end if;
  if tg_op <> 'DELETE' then
    v_new := jsonb_build_object('avatar_url', new.avatar_url, 'created_at', new.created_at,
      'deleted_at', new.deleted_at, 'email', new.email,
      'email_confirmed_at', new.email_confirmed_at, 'full_name', new.full_name,
      'is_anonymous', new.is_anonymous, 'phone', new.phone, 'role', new.role) - v_unchanged;
  end if;
  -- The switch is read here as well as kept in step with the trigger's state (by
  -- user_sync.on_audit_settings_change): the WHEN clause runs as whoever writes, who may not
  -- read the settings.
  insert into public.user_sync_audit (
    user_id, source, action, changed_columns, old_values, new_values
  )
  select
    coalesce(new.id, old.id),
    pg_catalog.current_setting('user_sync.source', true),
    case tg_op when 'INSERT' then 'inserted' when 'UPDATE' then 'updated' else 'deleted' end,
    v_changed,
    -- Email and phone values only when the project records contact values.
    case when s.record_contact_values then v_old else v_old - array['email', 'phone'] end,
    case when s.record_contact_values then v_new else v_new - array['email', 'phone'] end
  from user_sync.audit_settings s
  where s.singleton and s.enabled;
  return null;
end;
$$;

-- Fires only for the sync's own writes (the WHEN clause runs as whoever writes, who may not
-- read the settings, so the switch is read inside too).
create trigger user_sync_audit
  after insert or update or delete on public.users
  for each row
  when (pg_catalog.current_setting('user_sync.source', true) <> '')
  execute function user_sync.on_users_write();

-- With the trail off the trigger is disabled, so a sign-up does not even evaluate it. The
-- switch is data; this keeps the trigger's state in step with it (a rare change: it takes a
-- brief exclusive lock on public.users).
create function user_sync.on_audit_settings_change()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if user_sync.audit_enabled() then
    alter table public.users enable trigger user_sync_audit;
  else
    alter table public.users disable trigger user_sync_audit;
  end if;
  return null;
end;
$$;

create trigger user_sync_audit_switch
  after insert or update or delete on user_sync.audit_settings
  for each statement execute function user_sync.on_audit_settings_change();

-- Off, as the settings ship.
alter table public.users disable trigger user_sync_audit;

-- Deletes audit rows older than p_older_than and returns how many. Owner only (and pg_cron,
-- which runs as the owner): select user_sync.prune_audit('90 days');
create function user_sync.prune_audit(p_older_than interval)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deleted bigint;
begin
  if p_older_than is null or p_older_than < interval '0' then
    raise exception using errcode = '22023',
      message = 'prune_audit: p_older_than must be a non-negative interval, such as ''90 days''.';
  end if;
  delete from public.user_sync_audit a where a.occurred_at < now() - p_older_than;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end;
$$;

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
