-- supabase-user-sync 3/7: the audit trail, an append-only record of every change the sync makes
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

-- Read once per write of public.users (the trigger's WHEN): a one-row primary-key probe.
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

-- The audited columns of a row, as jsonb; email and phone are left out unless the project
-- records contact values.
create function user_sync.audited_values(p_row public.users)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return jsonb_build_object(
    'avatar_url', p_row.avatar_url,
    'created_at', p_row.created_at,
    'deleted_at', p_row.deleted_at,
    'email', p_row.email,
    'email_confirmed_at', p_row.email_confirmed_at,
    'full_name', p_row.full_name,
    'is_anonymous', p_row.is_anonymous,
    'phone', p_row.phone,
    'role', p_row.role
  );
end;
$$;

create function user_sync.on_users_write()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_source text := pg_catalog.current_setting('user_sync.source', true);
  v_old jsonb := case when tg_op <> 'INSERT' then user_sync.audited_values(old) end;
  v_new jsonb := case when tg_op <> 'DELETE' then user_sync.audited_values(new) end;
  v_contact boolean;
  v_changed text[];
begin
  if not user_sync.audit_enabled() then
    return null;
  end if;
  select s.record_contact_values into v_contact
  from user_sync.audit_settings s where s.singleton;
  -- Inserted: every column set to a value; deleted: every column that had one; updated:
  -- those that differ.
  select coalesce(array_agg(k order by k), '{}') into v_changed
  from pg_catalog.jsonb_object_keys(coalesce(v_new, v_old)) k
  where case tg_op
    when 'INSERT' then pg_catalog.jsonb_typeof(v_new -> k) <> 'null'
    when 'DELETE' then pg_catalog.jsonb_typeof(v_old -> k) <> 'null'
    else (v_old -> k) is distinct from (v_new -> k)
  end;
  if not v_contact then
    v_old := v_old - array['email', 'phone'];
    v_new := v_new - array['email', 'phone'];
  end if;
  insert into public.user_sync_audit (
    user_id, source, action, changed_columns, old_values, new_values
  ) values (
    coalesce(new.id, old.id),
    v_source,
    case tg_op when 'INSERT' then 'inserted' when 'UPDATE' then 'updated' else 'deleted' end,
    v_changed,
    -- Only the changed columns' values.
    case when tg_op <> 'INSERT' then (
      select coalesce(pg_catalog.jsonb_object_agg(e.key, e.value), '{}')
      from pg_catalog.jsonb_each(v_old) e where e.key = any (v_changed)) end,
    case when tg_op <> 'DELETE' then (
      select coalesce(pg_catalog.jsonb_object_agg(e.key, e.value), '{}')
      from pg_catalog.jsonb_each(v_new) e where e.key = any (v_changed)) end
  );
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
