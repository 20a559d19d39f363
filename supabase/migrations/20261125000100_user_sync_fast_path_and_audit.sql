-- supabase-user-sync, part 3: a sign-up path that costs about what a plain insert costs, roles
-- that stay backed by app_metadata, and an audit trail of every change the sync makes.
--
-- What changes against part 2:
-- * The mapping is still written once (v_mapping below), and now generated twice from that one
--   text: user_sync.user_plan(lo, hi) for ranges (resync) and user_sync.user_plan_one(id) for one
--   user (the trigger, the hooks, sync_user). With an equality on the primary key the planner
--   always probes two index entries, so the one-user path needs none of the planner settings
--   that keep a range sync linear, and none of their per-call cost.
-- * The write is also one text (v_write), generated into user_sync.apply (ranges) and
--   user_sync.apply_one (one user). Both take the source of the change, for the audit trail.
-- * The update trigger fires only when an input of the mapping changed: GoTrue rewrites
--   user_metadata during every sign-up (sub, email_verified) and app_metadata on every identity
--   link, and none of those keys matter here. The key lists below feed both the mapping and the
--   trigger's WHEN clause, so the two cannot drift.
-- * A role that is not self-assignable must stay backed by app_metadata.role: removing it (or
--   setting an unknown role) demotes the user to the default role. Before, an admin stayed
--   admin until a known role was set.
-- * The audit trail: public.user_sync_audit, switched on by data
--   (update user_sync.audit_settings set enabled = true), pruned with user_sync.prune_audit().

-- The audit trail ------------------------------------------------------------------------------

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
  -- Which path made the change: trigger, hook:<name>, webhook, resync, self_heal (sync_my_user),
  -- sync_user (a direct call of public.sync_user).
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
revoke all on sequence public.user_sync_audit_id_seq from public, anon, authenticated, service_role;
-- Readable through the API by the service role only (it bypasses RLS); written only by the
-- sync functions (owned by the migration role); nobody else may update or delete it.
grant select on table public.user_sync_audit to service_role;

-- Deletes audit rows older than p_older_than and returns how many. Owner only (and pg_cron,
-- which runs as the owner): select user_sync.prune_audit('90 days');
create function user_sync.prune_audit(p_older_than interval)
returns bigint
language plpgsql
security definer
set search_path = ''
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

-- Settings compiled into constants ---------------------------------------------------------------
--
-- The role list and the audit switch are data (user_sync.roles, user_sync.audit_settings), but
-- every sign-up reads them. Reading two tables per sign-up costs more than the sign-up's own
-- insert, so a statement trigger on each table compiles them into one-line SQL functions that
-- the planner inlines as constants. They are stable, not immutable: an inlined function is a
-- dependency of the cached plans that used it, so replacing it re-plans them in every session
-- (an immutable one is evaluated at plan time and no dependency is kept: a session would go
-- on with the old role list). Change the tables; never these functions.

create function user_sync.known_roles() returns text[] language sql stable parallel safe
  as $$ select '{}'::text[] $$;
create function user_sync.self_assignable_roles() returns text[] language sql stable
  parallel safe as $$ select '{}'::text[] $$;
create function user_sync.default_role() returns text language sql stable parallel safe
  as $$ select null::text $$;
create function user_sync.audit_enabled() returns boolean language sql stable parallel safe
  as $$ select false $$;
create function user_sync.audit_contact_values() returns boolean language sql stable
  parallel safe as $$ select false $$;

create function user_sync.compile_settings()
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_known text[];
  v_self text[];
  v_default text;
  v_audit boolean;
  v_contact boolean;
begin
  select coalesce(array_agg(r.role order by r.role), '{}'),
    coalesce(array_agg(r.role order by r.role) filter (where r.self_assignable), '{}'),
    min(r.role) filter (where r.is_default)
  into v_known, v_self, v_default
  from user_sync.roles r;
  select coalesce(bool_or(s.enabled), false), coalesce(bool_or(s.record_contact_values), false)
  into v_audit, v_contact
  from user_sync.audit_settings s;
  execute format('create or replace function user_sync.known_roles() returns text[] '
    'language sql stable parallel safe as %L', format('select %L::text[]', v_known));
  execute format('create or replace function user_sync.self_assignable_roles() returns text[] '
    'language sql stable parallel safe as %L', format('select %L::text[]', v_self));
  execute format('create or replace function user_sync.default_role() returns text '
    'language sql stable parallel safe as %L', format('select %L::text', v_default));
  execute format('create or replace function user_sync.audit_enabled() returns boolean '
    'language sql stable parallel safe as %L', format('select %L::boolean', v_audit));
  execute format('create or replace function user_sync.audit_contact_values() returns boolean '
    'language sql stable parallel safe as %L', format('select %L::boolean', v_contact));
end;
$$;

create function user_sync.on_settings_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform user_sync.compile_settings();
  return null;
end;
$$;

create trigger user_sync_compile_roles
  after insert or update or delete or truncate on user_sync.roles
  for each statement execute function user_sync.on_settings_change();
create trigger user_sync_compile_audit_settings
  after insert or update or delete or truncate on user_sync.audit_settings
  for each statement execute function user_sync.on_settings_change();

select user_sync.compile_settings();

-- The advisory-lock space of the per-user sync lock (the trigger and sync_one; see sync_one).
create function user_sync.lock_space() returns integer language sql immutable parallel safe
  as $$ select 1970432059 $$;

-- The mapping and the write, generated from one text each --------------------------------------

drop trigger user_sync_after_insert on auth.users;
drop trigger user_sync_after_update on auth.users;
drop function public.sync_user(uuid);
drop function user_sync.apply(uuid, uuid, boolean);

do $migration$
declare
  -- Where providers put a person's name and picture (Google: full_name/name/picture, GitHub:
  -- user_name/preferred_username/avatar_url), in order of preference.
  v_name_keys constant text[] := array['full_name', 'name', 'user_name', 'username', 'preferred_username'];
  v_avatar_keys constant text[] := array['avatar_url', 'picture'];
  -- Every user_metadata key the mapping reads.
  v_user_keys constant text[] := v_name_keys || v_avatar_keys || array['role'];

  -- THE MAPPING: for every auth user that %1$s selects (alias a), the public.users values it
  -- should have, given its current row (public.users filtered by %2$s, alias pu).
  v_mapping constant text := $mapping$
  select
    d.id,
    d.app_row_exists,
    -- in_sync: the app row exists and already holds every value the mapping wants. Rows that
    -- are in sync are never written, so a resync with nothing to do writes nothing.
    d.app_row_exists and (
      d.cur_email, d.cur_phone, d.cur_full_name, d.cur_avatar_url, d.cur_role,
      d.cur_email_confirmed_at, d.cur_is_anonymous, d.cur_created_at
    ) is not distinct from (
      d.email, d.phone, d.full_name, d.avatar_url, d.role,
      d.email_confirmed_at, d.is_anonymous, d.created_at
    ),
    d.email, d.phone, d.full_name, d.avatar_url, d.role,
    d.email_confirmed_at, d.is_anonymous, d.created_at,
    d.cur_email, d.cur_phone, d.cur_full_name, d.cur_avatar_url, d.cur_role,
    d.cur_email_confirmed_at, d.cur_is_anonymous, d.cur_created_at, d.cur_updated_at
  from (
    select
      a.id,
      u.id is not null as app_row_exists,
      -- Auth-owned columns follow auth.users on every sync.
      a.email::text as email,
      a.phone::text as phone,
      a.email_confirmed_at,
      a.is_anonymous,
      coalesce(a.created_at, u.created_at, now()) as created_at,
      -- Profile columns: taken from the provider's metadata while empty, then the user's own.
      -- A missing name stays null rather than becoming the email.
      coalesce(nullif(u.full_name, ''), %3$s) as full_name,
      coalesce(nullif(u.avatar_url, ''), %4$s) as avatar_url,
      -- Role. At creation: a known role in app_metadata (written only by the service role),
      -- else a self-assignable role the user asked for in user_metadata, else the default.
      -- Afterwards only app_metadata can change it: user_metadata is writable by the user
      -- (supabase.auth.updateUser), so reading it later would let anyone promote themselves.
      -- A role that is not self-assignable must stay backed by app_metadata: without it the
      -- user falls back to the default.
      coalesce(
        case when a.raw_app_meta_data ->> 'role' = any (user_sync.known_roles())
          then a.raw_app_meta_data ->> 'role' end,
        case
          when u.id is null and a.raw_user_meta_data ->> 'role' = any (user_sync.self_assignable_roles())
            then a.raw_user_meta_data ->> 'role'
          when u.role = any (user_sync.self_assignable_roles()) then u.role
        end,
        user_sync.default_role()
      ) as role,
      u.email as cur_email,
      u.phone as cur_phone,
      u.full_name as cur_full_name,
      u.avatar_url as cur_avatar_url,
      u.role as cur_role,
      u.email_confirmed_at as cur_email_confirmed_at,
      u.is_anonymous as cur_is_anonymous,
      u.created_at as cur_created_at,
      u.updated_at as cur_updated_at
    from auth.users a
    -- The same filter on both sides: the planner cannot infer it for public.users from the
    -- join, and without it a batch would read all of public.users.
    left join (select * from public.users pu where %2$s) u on u.id = a.id
    where %1$s
  ) d
  $mapping$;

  v_plan_columns constant text := $cols$
    id uuid, app_row_exists boolean, in_sync boolean,
    email text, phone text, full_name text, avatar_url text, role text,
    email_confirmed_at timestamptz, is_anonymous boolean, created_at timestamptz,
    cur_email text, cur_phone text, cur_full_name text, cur_avatar_url text, cur_role text,
    cur_email_confirmed_at timestamptz, cur_is_anonymous boolean, cur_created_at timestamptz,
    cur_updated_at timestamptz
  $cols$;

  -- How a planned row is written: the upsert's conflict clause, shared by every write.
  v_on_conflict constant text := $on_conflict$
    on conflict (id) do update set
      email = excluded.email,
      phone = excluded.phone,
      -- Re-checked against the locked row: a profile the user filled in is never overwritten,
      -- even by a sync that read the row before the user's edit committed.
      full_name = coalesce(nullif(u.full_name, ''), excluded.full_name),
      avatar_url = coalesce(nullif(u.avatar_url, ''), excluded.avatar_url),
      role = excluded.role,
      email_confirmed_at = excluded.email_confirmed_at,
      is_anonymous = excluded.is_anonymous,
      created_at = excluded.created_at,
      updated_at = excluded.updated_at
    -- No-op skip for the race where another sync got there first: no write, no updated_at bump.
    where (
      u.email, u.phone, u.full_name, u.avatar_url, u.role, u.email_confirmed_at,
      u.is_anonymous, u.created_at
    ) is distinct from (
      excluded.email, excluded.phone, coalesce(nullif(u.full_name, ''), excluded.full_name),
      coalesce(nullif(u.avatar_url, ''), excluded.avatar_url), excluded.role,
      excluded.email_confirmed_at, excluded.is_anonymous, excluded.created_at
    )
  $on_conflict$;

  -- THE WRITE: applies the plan {PLAN}, counts what it found and did, and (when the audit trail is
  -- on) records each written row. p_dry_run computes the same counts and writes nothing.
  v_write constant text := $write$
begin
  with plan as materialized (
    select p.* from {PLAN} p
  ),
  written as (
    insert into public.users as u (
      id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
      created_at, updated_at
    )
    select
      plan.id, plan.email, plan.phone, plan.full_name, plan.avatar_url, plan.role,
      plan.email_confirmed_at, plan.is_anonymous, plan.created_at, {UPDATED_AT}
    from plan
    -- Only rows that need it, so an in-sync row is neither written nor locked.
    where not plan.in_sync and not p_dry_run
    {ON_CONFLICT}
    returning u.id, u.email, u.phone, u.full_name, u.avatar_url, u.role, u.email_confirmed_at,
      u.is_anonymous, u.created_at, (u.xmax = 0) as was_inserted,
      case when u.xmax = 0 then 'inserted' else 'updated' end as action
  ),
  audited as (
    insert into public.user_sync_audit (
      user_id, source, action, changed_columns, old_values, new_values
    )
    select
      w.id, p_source, w.action, diff.changed_columns, diff.old_values, diff.new_values
    from written w
    join plan on plan.id = w.id
    {DIFF_WRITTEN}
    where user_sync.audit_enabled()
  )
  select
    count(*)::integer,
    count(*) filter (where plan.app_row_exists)::integer,
    count(*) filter (where not plan.app_row_exists)::integer,
    count(*) filter (where plan.app_row_exists and not plan.in_sync)::integer,
    (select count(*) filter (where w.was_inserted) from written w)::integer,
    (select count(*) filter (where not w.was_inserted) from written w)::integer,
    count(*) filter (where plan.in_sync)::integer
  into auth_users, app_users, missing, stale, inserted, updated, unchanged
  from plan;
end;
  $write$;

  -- THE AUDIT DIFF of one row: which columns changed ({ACTION} 'inserted': the non-null new
  -- ones; 'deleted': the non-null old ones; else those that differ) and their old and new
  -- values, email and phone only when the project opts in. {ROWS}: (name, old, new, shown).
  v_diff constant text := $diff$
    cross join lateral (
      select
        coalesce(array_agg(c.k order by c.k), '{}') as changed_columns,
        case when {ACTION} = 'inserted' then null
          else coalesce(jsonb_object_agg(c.k, c.o) filter (where c.shown), '{}') end as old_values,
        case when {ACTION} = 'deleted' then null
          else coalesce(jsonb_object_agg(c.k, c.n) filter (where c.shown), '{}') end as new_values
      from (values {ROWS}) as c (k, o, n, shown)
      where case {ACTION}
        when 'inserted' then c.n is not null
        when 'deleted' then c.o is not null
        else c.o is distinct from c.n
      end
    ) diff
  $diff$;
  -- The audited columns, in name order; email and phone are contact data.
  v_audit_columns constant text[] := array[
    'avatar_url', 'created_at', 'email', 'email_confirmed_at', 'full_name', 'is_anonymous',
    'phone', 'role'
  ];

  v_name_expr text;
  v_avatar_expr text;
  v_write_text text;
  v_write_trigger text;
  v_diff_written text;
  v_diff_deleted text;
  v_when text;
begin
  select replace(replace(v_diff, '{ACTION}', 'w.action'), '{ROWS}', string_agg(format(
    '(%L, to_jsonb(plan.%I), to_jsonb(w.%I), %s)', k, 'cur_' || k, k,
    case when k in ('email', 'phone') then 'user_sync.audit_contact_values()' else 'true' end
  ), ', ' order by k))
  into v_diff_written from unnest(v_audit_columns) k;
  select replace(replace(v_diff, '{ACTION}', '''deleted'''), '{ROWS}', string_agg(format(
    '(%L, to_jsonb(g.%I), null::jsonb, %s)', k, k,
    case when k in ('email', 'phone') then 'user_sync.audit_contact_values()' else 'true' end
  ), ', ' order by k))
  into v_diff_deleted from unnest(v_audit_columns) k;
  -- Every write but the trigger's is a compare-and-set: it proposes the row's updated_at as it
  -- planned it (now() for a row it found missing) and writes only if the row still has it. A
  -- sync that planned from a snapshot older than a concurrent write (say a resync batch racing
  -- the trigger of an admin's role grant) then leaves the newer row alone instead of writing
  -- older values over it. The trigger's write stays unconditional: it runs in the transaction
  -- that changes the auth user, holding its row, so nothing it overwrites is newer.
  v_write_text := replace(replace(replace(v_write,
    '{ON_CONFLICT}', replace(replace(v_on_conflict,
      'updated_at = excluded.updated_at', 'updated_at = now()'),
      '    where (', '    where u.updated_at = excluded.updated_at and (')),
    '{UPDATED_AT}', 'coalesce(plan.cur_updated_at, now())'),
    '{DIFF_WRITTEN}', v_diff_written);
  v_write_trigger := replace(replace(replace(v_write,
    '{ON_CONFLICT}', v_on_conflict),
    '{UPDATED_AT}', 'now()'),
    '{DIFF_WRITTEN}', v_diff_written);
  select string_agg(format('nullif(btrim(a.raw_user_meta_data ->> %L), %L)', k, ''), ', ')
    into v_name_expr from unnest(v_name_keys) k;
  select string_agg(format('nullif(btrim(a.raw_user_meta_data ->> %L), %L)', k, ''), ', ')
    into v_avatar_expr from unnest(v_avatar_keys) k;
  select string_agg(format(
    'old.raw_user_meta_data -> %1$L is distinct from new.raw_user_meta_data -> %1$L', k),
    E'\n    or ')
    into v_when from unnest(v_user_keys) k;

  -- The range plan: an inlinable SQL function, so the id range reaches both tables' primary-key
  -- indexes. The extra cur_* columns (the row as it was) feed the audit trail.
  drop function user_sync.user_plan(uuid, uuid);
  execute format(
    'create function user_sync.user_plan(p_lo uuid, p_hi uuid) returns table (%s) '
    'language sql stable as %L',
    v_plan_columns,
    format(v_mapping, 'a.id >= p_lo and a.id <= p_hi', 'pu.id >= p_lo and pu.id <= p_hi',
      v_name_expr, v_avatar_expr));
  -- The same mapping for one user: an equality on both primary keys.
  execute format(
    'create function user_sync.user_plan_one(p_id uuid) returns table (%s) '
    'language sql stable as %L',
    v_plan_columns,
    format(v_mapping, 'a.id = p_id', 'pu.id = p_id', v_name_expr, v_avatar_expr));

  -- Ranges (resync). One plan, whatever the statistics say: primary-key range scans of both
  -- tables, merged or hashed, never a nested loop over a table scan. With an empty, analysed
  -- public.users the planner would otherwise scan the growing table once per row (a quadratic
  -- resync). The disabled plan types inflate cost estimates, which would otherwise trigger JIT
  -- compilation (hundreds of milliseconds per call for no gain at these sizes).
  execute format($f$
    create function user_sync.apply(
      p_lo uuid, p_hi uuid, p_dry_run boolean, p_source text,
      out auth_users integer, out app_users integer, out missing integer, out stale integer,
      out inserted integer, out updated integer, out unchanged integer
    )
    language plpgsql
    security definer
    set search_path = ''
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set enable_nestloop = off
    set jit = off
    as %L$f$,
    replace(v_write_text, '{PLAN}', 'user_sync.user_plan(p_lo, p_hi)'));

  -- One user (the trigger, hooks, sync_user, sync_my_user): index probes whatever the plan
  -- cache chooses, so no planner settings and none of their per-call cost.
  execute format($f$
    create function user_sync.apply_one(
      p_id uuid, p_dry_run boolean, p_source text,
      out auth_users integer, out app_users integer, out missing integer, out stale integer,
      out inserted integer, out updated integer, out unchanged integer
    )
    language plpgsql
    security definer
    set search_path = ''
    as %L$f$,
    replace(v_write_text, '{PLAN}', 'user_sync.user_plan_one(p_id)'));

  -- Deletes the app rows of users whose auth user is gone (orphans), audits them, and returns
  -- how many went.
  execute format($f$
    create function user_sync.delete_orphans(p_ids uuid[], p_source text)
    returns integer
    language plpgsql
    security definer
    set search_path = ''
    as %L$f$, replace($orphans$
declare
  v_deleted integer;
begin
  with gone as (
    delete from public.users u where u.id = any (p_ids)
    returning u.id, u.email, u.phone, u.full_name, u.avatar_url, u.role, u.email_confirmed_at,
      u.is_anonymous, u.created_at
  ),
  audited as (
    insert into public.user_sync_audit (
      user_id, source, action, changed_columns, old_values, new_values
    )
    select g.id, p_source, 'deleted', diff.changed_columns, diff.old_values, diff.new_values
    from gone g
    {DIFF_DELETED}
    where user_sync.audit_enabled()
  )
  select count(*) into v_deleted from gone;
  return v_deleted;
end;
$orphans$, '{DIFF_DELETED}', v_diff_deleted));

  -- The trigger function. It must never raise: an exception here becomes "Database error
  -- saving new user" and blocks every sign-up. A failure rolls back only the sync (the inner
  -- block is a subtransaction), is recorded, and the auth write commits; resync repairs it.
  -- It runs on every sign-up, so it plans and writes in one statement (with the conflict clause
  -- every write shares) and skips rows already in sync; with the audit trail on it runs the
  -- text of apply_one, the write that also records itself. The switch is a compiled constant,
  -- so neither branch reads a settings table.
  execute format($f$
    create or replace function user_sync.on_auth_user_change()
    returns trigger
    language plpgsql
    security definer
    set search_path = ''
    as %L$f$, replace(replace($trigger$
declare
  -- The names the audited write (the text of apply_one) uses.
  p_dry_run constant boolean := false;
  p_source constant text := 'trigger';
  auth_users integer;
  app_users integer;
  missing integer;
  stale integer;
  inserted integer;
  updated integer;
  unchanged integer;
begin
  begin
    -- A change of an existing user: hold the user's sync lock until this transaction ends, so
    -- that no sync outside it writes from an older snapshot meanwhile (sync_one). A new user is
    -- invisible to every other transaction until commit, so a sign-up needs no lock.
    if tg_op = 'UPDATE' then
      perform pg_catalog.pg_advisory_xact_lock(
        user_sync.lock_space(), pg_catalog.hashtext(new.id::text));
    end if;
    if user_sync.audit_enabled() then
      -- With the audit trail on: the write that also records itself.
      {WRITE_ONE}
    else
    -- One statement: plan and write (nothing when the row is already in sync).
    insert into public.users as u (
      id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
      created_at, updated_at
    )
    select
      plan.id, plan.email, plan.phone, plan.full_name, plan.avatar_url, plan.role,
      plan.email_confirmed_at, plan.is_anonymous, plan.created_at, now()
    from user_sync.user_plan_one(new.id) plan
    where not plan.in_sync
    {ON_CONFLICT};
    end if;
    -- A user that syncs again is no longer a failure. A new auth user has no failure yet, so
    -- only updates look (a probe of a usually empty table).
    if tg_op = 'UPDATE' then
      if exists (select from user_sync.sync_failures f where f.user_id = new.id) then
        delete from user_sync.sync_failures f where f.user_id = new.id;
      end if;
    end if;
  exception when others then
    perform user_sync.record_failure(new.id, 'trigger', sqlstate, sqlerrm);
  end;
  return null;
end;
$trigger$, '{ON_CONFLICT}', v_on_conflict),
    '{WRITE_ONE}', replace(v_write_trigger, '{PLAN}', 'user_sync.user_plan_one(new.id)')));

  -- The trigger on auth.users. Inserts always sync. Updates sync only when a column the mapping
  -- reads really changed: a sign-in (last_sign_in_at), GoTrue's rewrite of unchanged metadata,
  -- and the keys it adds to user_metadata during sign-up (sub, email_verified, ...) cost nothing.
  create trigger user_sync_after_insert
    after insert on auth.users
    for each row execute function user_sync.on_auth_user_change();
  execute format($f$
    create trigger user_sync_after_update
      after update of email, phone, email_confirmed_at, is_anonymous, created_at,
        raw_app_meta_data, raw_user_meta_data
      on auth.users
      for each row
      when (
        old.email is distinct from new.email
        or old.phone is distinct from new.phone
        or old.email_confirmed_at is distinct from new.email_confirmed_at
        or old.is_anonymous is distinct from new.is_anonymous
        or old.created_at is distinct from new.created_at
        or old.raw_app_meta_data -> 'role' is distinct from new.raw_app_meta_data -> 'role'
        or %s
      )
      execute function user_sync.on_auth_user_change()$f$,
    v_when);
end;
$migration$;

comment on function user_sync.user_plan(uuid, uuid) is
  'The sync mapping: for each auth user in the id range, the public.users values it should have (given its current row) and whether it already has them.';
comment on function user_sync.user_plan_one(uuid) is
  'The sync mapping for one auth user (generated from the same text as user_plan).';

-- Remembers a sync that could not be written (and audits it when the trail is on). Never
-- raises: it is called from the trigger, where raising would block sign-up.
create or replace function user_sync.record_failure(
  p_user_id uuid,
  p_source text,
  p_sqlstate text,
  p_message text
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into user_sync.sync_failures as f (user_id, source, sqlstate, message)
  values (p_user_id, p_source, p_sqlstate, left(p_message, 2000))
  on conflict (user_id) do update set
    source = excluded.source,
    sqlstate = excluded.sqlstate,
    message = excluded.message,
    last_failed_at = now(),
    attempts = f.attempts + 1;
  insert into public.user_sync_audit (user_id, source, action, sqlstate)
  select p_user_id, p_source, 'failed', p_sqlstate
  from user_sync.audit_settings s where s.enabled;
exception when others then
  raise warning 'user_sync: could not record a sync failure for user %: % (%)',
    p_user_id, sqlerrm, sqlstate;
end;
$$;

-- Syncs one user (or, with p_dry_run, says what a sync would do) and reports it, with the
-- counts of a resync. Shared by sync_user, sync_my_user, resync of listed ids and the hooks.
create or replace function user_sync.sync_one(
  p_user_id uuid,
  p_source text,
  p_dry_run boolean default false
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_counts record;
  v_orphaned integer := 0;
  v_deleted integer := 0;
  v_action text;
  v_sqlstate text;
  v_seen record;
  v_busy boolean := false;
begin
  -- The user's failure record as it is before the sync: only this one may be drained (one
  -- recorded by a concurrent sync after this one read the user must stay).
  select f.attempts, f.last_failed_at into v_seen
  from user_sync.sync_failures f where f.user_id = p_user_id;
  -- Every count null until apply_one() returns: when it raises, the report below still reads
  -- these fields (an unassigned record would raise there, outside the handler).
  select null::integer as auth_users, null::integer as app_users, null::integer as missing,
    null::integer as stale, null::integer as inserted, null::integer as updated,
    null::integer as unchanged
  into v_counts;
  begin
    if not p_dry_run
      and not exists (select from user_sync.user_plan_one(p_user_id) p where p.in_sync)
    then
      -- This sync will write. A sync that planned from an older snapshot than a concurrent
      -- change of this auth user (an admin granting or removing a role) would overwrite what
      -- that change's trigger wrote. The trigger holds the user's sync lock until its
      -- transaction ends; take it too, and plan in the next statement, which sees every change
      -- committed before. Never wait for it: a hook can run inside the very transaction that
      -- holds it (GoTrue's token transaction), and whoever holds it is changing the user and
      -- syncs that itself. Then this sync writes nothing and says 'deferred'. (An advisory lock:
      -- on Supabase the migration role may not lock auth.users rows.)
      v_busy := not pg_catalog.pg_try_advisory_xact_lock(
        user_sync.lock_space(), pg_catalog.hashtext(p_user_id::text));
    end if;
    v_counts := user_sync.apply_one(p_user_id, p_dry_run or v_busy, p_source);
    if v_counts.auth_users = 0 then
      -- No auth user: an app row left behind (an orphan) goes, as the cascade would have done.
      select count(*) into v_orphaned from public.users u where u.id = p_user_id;
      if not p_dry_run and v_orphaned > 0 then
        v_deleted := user_sync.delete_orphans(array[p_user_id], p_source);
      end if;
      v_action := case when v_orphaned > 0 then 'deleted' else 'not_found' end;
    else
      v_action := case
        when v_busy and (v_counts.missing > 0 or v_counts.stale > 0) then 'deferred'
        when v_counts.inserted > 0 or v_counts.missing > 0 then 'inserted'
        when v_counts.updated > 0 or v_counts.stale > 0 then 'updated'
        else 'unchanged'
      end;
    end if;
    if not p_dry_run and not v_busy and v_seen.attempts is not null then
      delete from user_sync.sync_failures f
      where f.user_id = p_user_id
        and f.attempts = v_seen.attempts
        and f.last_failed_at = v_seen.last_failed_at;
    end if;
  exception when others then
    v_sqlstate := sqlstate;
    if not p_dry_run then
      perform user_sync.record_failure(p_user_id, p_source, v_sqlstate, sqlerrm);
    end if;
    v_action := 'failed';
  end;
  return jsonb_strip_nulls(jsonb_build_object(
    'user_id', p_user_id,
    'action', v_action,
    'sqlstate', v_sqlstate
  )) || jsonb_build_object(
    'role', (select u.role from public.users u where u.id = p_user_id),
    'counts', jsonb_build_object(
      'auth_users', coalesce(v_counts.auth_users, case when v_action = 'failed' then 1 else 0 end),
      'app_users', coalesce(v_counts.app_users, 0) + v_orphaned,
      'missing', coalesce(v_counts.missing, 0),
      'stale', coalesce(v_counts.stale, 0),
      'orphaned', v_orphaned,
      'inserted', coalesce(v_counts.inserted, 0),
      'updated', coalesce(v_counts.updated, 0),
      'deleted', v_deleted,
      'unchanged', coalesce(v_counts.unchanged, 0),
      'failed', case when v_action = 'failed' then 1 else 0 end
    )
  );
end;
$$;

-- For the service role (the edge function): sync one user by id. p_source names the path for
-- the audit trail: 'hook:<hook name>', 'webhook', or the default 'sync_user'.
create function public.sync_user(p_user_id uuid, p_source text default 'sync_user')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_user_id is null then
    raise exception using errcode = '22023', message = 'sync_user: p_user_id is required.';
  end if;
  if p_source is null or p_source !~ '^(sync_user|webhook|hook:[a-z0-9-]{1,40})$' then
    raise exception using errcode = '22023', message =
      'sync_user: p_source must be ''sync_user'', ''webhook'' or ''hook:<name>''.';
  end if;
  return user_sync.sync_one(p_user_id, p_source) - 'counts';
end;
$$;

comment on function public.sync_user(uuid, text) is
  'Syncs public.users for one auth user and returns {user_id, action, role}. Service role only.';

-- For a signed-in user: make sure my own row exists and is current (audited as self_heal).
create or replace function public.sync_my_user()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
begin
  if v_user_id is null then
    raise exception using
      errcode = '42501',
      message = 'sync_my_user() needs a signed-in user: the request carries no user id.';
  end if;
  return user_sync.sync_one(v_user_id, 'self_heal') - 'counts';
end;
$$;

-- Repairs (or, with p_dry_run, reports) one keyset batch: the auth users with
-- p_first <= id <= p_last, and the app rows with p_after < id <= p_until (p_after null: no
-- lower bound), which covers the gap before the batch so orphans there are seen. The reports
-- of consecutive batches add up to the report of the whole table.
create or replace function user_sync.resync_range(
  p_dry_run boolean,
  p_first uuid,
  p_last uuid,
  p_after uuid,
  p_until uuid
)
returns jsonb
language plpgsql
security definer
set search_path = ''
-- As in user_sync.apply: range scans of the primary keys only, never a whole table per batch.
set enable_seqscan = off
set enable_nestloop = off
set jit = off
as $$
declare
  v_counts record;
  v_one jsonb;
  v_report jsonb;
  v_failed uuid[] := '{}';
  v_id uuid;
  v_orphans uuid[];
  v_deleted integer := 0;
  v_seen jsonb;
  v_sub_after uuid;
  v_sub_first uuid;
  v_sub_last uuid;
begin
  -- The failures of the range as they are before the sync. Only these may be drained below:
  -- each statement reads a new snapshot, so a failure committed while the sync runs (by a
  -- sign-up the sync never saw) must stay on record.
  select coalesce(jsonb_agg(jsonb_build_array(f.user_id, f.attempts, f.last_failed_at)), '[]')
  into v_seen
  from user_sync.sync_failures f
  where (p_after is null or f.user_id > p_after) and f.user_id <= p_until;

  if p_first is not null then
    begin
      v_counts := user_sync.apply(p_first, p_last, p_dry_run, 'resync');
      v_report := to_jsonb(v_counts);
    exception when others then
      -- One bad row must not block the rest: redo the range in batches of 10,000 users, and a
      -- batch that fails again one user at a time; the users that still fail are recorded
      -- (sync_one does that) and counted.
      v_report := '{}';
      v_sub_after := null;
      loop
        -- (uuid has no min() or max(): the first and last of the next 10,000 by the index.)
        select (array_agg(b.id order by b.id))[1], (array_agg(b.id order by b.id desc))[1]
        into v_sub_first, v_sub_last
        from (
          select a.id from auth.users a
          where a.id >= p_first and a.id <= p_last
            and (v_sub_after is null or a.id > v_sub_after)
          order by a.id
          limit 10000
        ) b;
        exit when v_sub_first is null;
        begin
          v_counts := user_sync.apply(v_sub_first, v_sub_last, p_dry_run, 'resync');
          v_report := user_sync.add_counts(v_report, to_jsonb(v_counts));
        exception when others then
          for v_id in
            select a.id from auth.users a
            where a.id >= v_sub_first and a.id <= v_sub_last
            order by a.id
          loop
            v_one := user_sync.sync_one(v_id, 'resync', p_dry_run);
            if v_one ->> 'action' = 'failed' then
              v_failed := v_failed || v_id;
            end if;
            v_report := user_sync.add_counts(v_report, v_one -> 'counts');
          end loop;
        end;
        v_sub_after := v_sub_last;
      end loop;
    end;
  else
    v_report := '{}';
  end if;

  -- Orphans: app rows whose auth user is gone. While a validated, immediate foreign key from
  -- public.users.id to auth.users cascades deletes, none can exist, and the pass is skipped;
  -- they appear when it was dropped or deferred, or rows were copied in without it.
  if exists (
    select from pg_catalog.pg_constraint c
    join pg_catalog.pg_attribute att
      on att.attrelid = c.conrelid and att.attnum = c.conkey[1] and att.attname = 'id'
    where c.conrelid = 'public.users'::regclass and c.confrelid = 'auth.users'::regclass
      and c.contype = 'f' and c.convalidated and not c.condeferrable
      and c.confdeltype = 'c' and cardinality(c.conkey) = 1
  ) then
    v_orphans := '{}';
  else
    select coalesce(array_agg(u.id), '{}') into v_orphans
    from public.users u
    where (p_after is null or u.id > p_after) and u.id <= p_until
      and not exists (
        -- The range is repeated on auth.users so that both sides are index range scans.
        select 1 from auth.users a
        where a.id = u.id and (p_after is null or a.id > p_after) and a.id <= p_until
      );
  end if;
  if not p_dry_run and cardinality(v_orphans) > 0 then
    v_deleted := user_sync.delete_orphans(v_orphans, 'resync');
  end if;

  -- Drain the failures of the range seen before the sync, unless they failed again meanwhile:
  -- each such user is now synced, gone, or re-recorded.
  if not p_dry_run and v_seen <> '[]' then
    delete from user_sync.sync_failures f
    using jsonb_array_elements(v_seen) seen
    where f.user_id = (seen ->> 0)::uuid
      and f.attempts = (seen ->> 1)::integer
      and f.last_failed_at = (seen ->> 2)::timestamptz
      and not (f.user_id = any (v_failed));
  end if;

  return user_sync.add_counts(v_report, jsonb_build_object(
    'app_users', cardinality(v_orphans),
    'orphaned', cardinality(v_orphans),
    'deleted', v_deleted
  ));
end;
$$;

-- Repairs drift between auth.users and public.users, or reports it (p_dry_run); see part 2 and
-- docs/sql-api.md. Unchanged but for the size of its internal batches.
create or replace function public.resync_users(
  p_dry_run boolean default false,
  p_user_ids uuid[] default null,
  p_batch_size integer default null,
  p_cursor uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- Without p_batch_size, up to a million users per statement. Keyset batches of random UUIDs
  -- are scattered over the whole table, so each batch reads most of its pages: 20,000-user
  -- batches read a million-user table about 19 times (1.8x the seed's one-pass backfill). One
  -- pass reads it once; a failing row costs a retry in batches of 10,000 (resync_range).
  v_internal_batch constant integer := 1000000;
  v_dry_run boolean := coalesce(p_dry_run, false);
  v_scope text;
  v_limit integer;
  v_after uuid := p_cursor;
  v_first uuid;
  v_last uuid;
  v_id uuid;
  v_report jsonb := user_sync.add_counts('{}', '{}');
  v_done boolean := false;
begin
  if p_user_ids is not null and (p_batch_size is not null or p_cursor is not null) then
    raise exception using errcode = '22023',
      message = 'resync_users: p_user_ids cannot be combined with p_batch_size or p_cursor.';
  end if;
  if p_batch_size is not null and (p_batch_size < 1 or p_batch_size > 50000) then
    raise exception using errcode = '22023', message = format(
      'resync_users: p_batch_size must be between 1 and 50000, got %s.', p_batch_size);
  end if;
  if p_cursor is not null and p_batch_size is null then
    raise exception using errcode = '22023',
      message = 'resync_users: p_cursor needs p_batch_size (one batch after the cursor).';
  end if;
  if p_user_ids is not null and cardinality(p_user_ids) > 50000 then
    raise exception using errcode = '22023',
      message = 'resync_users: at most 50000 p_user_ids per call; use batches for more.';
  end if;

  if p_user_ids is not null then
    v_scope := 'ids';
    for v_id in select distinct i from unnest(p_user_ids) as i where i is not null loop
      v_report := user_sync.add_counts(
        v_report, user_sync.sync_one(v_id, 'resync', v_dry_run) -> 'counts'
      );
    end loop;
    v_done := true;
  else
    v_scope := case when p_batch_size is null then 'all' else 'batch' end;
    v_limit := coalesce(p_batch_size, v_internal_batch);
    loop
      -- The next keyset batch: the first and the v_limit-th auth id after the cursor (an
      -- index-only walk of the primary key). Two spellings, so each can use the index.
      if v_after is null then
        select a.id into v_first from auth.users a order by a.id limit 1;
        select a.id into v_last from auth.users a order by a.id offset v_limit - 1 limit 1;
      else
        select a.id into v_first from auth.users a where a.id > v_after order by a.id limit 1;
        select a.id into v_last from auth.users a where a.id > v_after
          order by a.id offset v_limit - 1 limit 1;
      end if;
      v_done := v_last is null;
      if v_done then
        select a.id into v_last from auth.users a order by a.id desc limit 1;
      end if;
      v_report := user_sync.add_counts(v_report, user_sync.resync_range(
        v_dry_run, v_first, v_last, v_after,
        case when v_done then 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid else v_last end
      ));
      -- (v_first is null when no auth user is left after the cursor: only orphans are checked.)
      exit when v_done or p_batch_size is not null;
      v_after := v_last;
    end loop;
  end if;

  return v_report || jsonb_build_object(
    'dry_run', v_dry_run,
    'scope', v_scope,
    'failures_pending', (select count(*) from user_sync.sync_failures),
    'next_cursor', case when v_done then null else v_last end,
    'done', v_done
  );
end;
$$;


-- Privileges: functions are executable by PUBLIC by default, and Supabase's default privileges
-- grant them to anon and authenticated too. Take all of that back, then grant what is meant.
revoke all on function user_sync.audit_contact_values() from public, anon, authenticated, service_role;
revoke all on function user_sync.known_roles() from public, anon, authenticated, service_role;
revoke all on function user_sync.self_assignable_roles() from public, anon, authenticated, service_role;
revoke all on function user_sync.default_role() from public, anon, authenticated, service_role;
revoke all on function user_sync.audit_enabled() from public, anon, authenticated, service_role;
revoke all on function user_sync.compile_settings() from public, anon, authenticated, service_role;
revoke all on function user_sync.lock_space() from public, anon, authenticated, service_role;
revoke all on function user_sync.on_settings_change() from public, anon, authenticated, service_role;
revoke all on function user_sync.prune_audit(interval) from public, anon, authenticated, service_role;
revoke all on function user_sync.user_plan(uuid, uuid) from public, anon, authenticated, service_role;
revoke all on function user_sync.user_plan_one(uuid) from public, anon, authenticated, service_role;
revoke all on function user_sync.apply(uuid, uuid, boolean, text) from public, anon, authenticated, service_role;
revoke all on function user_sync.apply_one(uuid, boolean, text) from public, anon, authenticated, service_role;
revoke all on function user_sync.delete_orphans(uuid[], text) from public, anon, authenticated, service_role;
revoke all on function public.sync_user(uuid, text) from public, anon, authenticated;
-- sync_my_user is for a signed-in user; Supabase's default privileges also gave it to the
-- service role, which has no user id to sync.
revoke all on function public.sync_my_user() from service_role;
grant execute on function public.sync_user(uuid, text) to service_role;
