-- supabase-user-sync 8/9: the mapping as a view, so that a resync is a join and not a function
-- call per user; the trigger, the resync and the hooks all read it.
--
-- The second edition mapped each user with user_sync.map_user (plpgsql). Correct, but a call
-- per user: a resync of 200,000 users that had nothing to do cost 24 times the seed's
-- anti-join, and its memory grew with the user count. A view is inlined into the query that
-- reads it, so a resync plans one hash join over both tables and evaluates the mapping as
-- plain expressions, and a single user's sync plans two primary-key probes.
--
-- What changes for callers: nothing in the API (sync_user, sync_my_user, resync_users and the
-- hooks keep their signatures and answers). user_sync.plan stays, reading the view.
-- user_sync.map_user, user_sync.values_of and user_sync.write_users are dropped.

-- The role lists the mapping reads, kept in one row in step with user_sync.roles (1/9) by a
-- statement trigger on it. One primary-key probe per mapping, where reading user_sync.roles
-- itself took four sub-plans (known, self-assignable twice, default): about 16 µs of every
-- sign-up, measured on 20,000 GoTrue-order sign-ups.
create table user_sync.role_lists (
  singleton boolean primary key default true check (singleton),
  known text[] not null,
  self_assignable text[] not null,
  fallback text
);
comment on table user_sync.role_lists is
  'Derived from user_sync.roles (kept in step by a trigger on it): every role, the self-assignable ones, the default. Do not edit; edit user_sync.roles.';
alter table user_sync.role_lists enable row level security;
revoke all on table user_sync.role_lists from public, anon, authenticated, service_role;

create function user_sync.on_roles_change()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Role edits in two transactions at once: the second waits here for the first to end, and
  -- then reads the roles in a new statement, which sees what the first committed. Reading
  -- before this lock would write lists missing the first one's roles.
  perform from user_sync.role_lists l where l.singleton for update;
  insert into user_sync.role_lists as l (singleton, known, self_assignable, fallback)
  select true,
    coalesce(pg_catalog.array_agg(r.role order by r.role), '{}'),
    coalesce(pg_catalog.array_agg(r.role order by r.role) filter (where r.self_assignable), '{}'),
    max(r.role) filter (where r.is_default)
  from user_sync.roles r
  on conflict (singleton) do update set
    known = excluded.known,
    self_assignable = excluded.self_assignable,
    fallback = excluded.fallback;
  return null;
end;
$$;

create trigger user_sync_role_lists
  after insert or update or delete or truncate on user_sync.roles
  for each statement execute function user_sync.on_roles_change();

-- Filled now from the roles as they are (a statement trigger fires for no rows too).
update user_sync.roles set role = role where false;

-- What public.users should hold for each auth user (the sync-owned columns, in public.users
-- order), given the app row it has now, and whether that row already holds it:
--   select * from user_sync.mapped where not in_sync;
-- The column-ownership rules (docs/sql-api.md) are the expressions below, written once.
create view user_sync.mapped
with (security_invoker = true)
as
select
  a.id,
  u.id is not null as has_app_row,
  -- A row already in step is never written: no new row version, no updated_at bump.
  u.id is not null
    and (u.email, u.phone, u.full_name, u.avatar_url, u.role, u.email_confirmed_at,
      u.is_anonymous, u.deleted_at, u.created_at)
    is not distinct from
    (v.email, v.phone, v.full_name, v.avatar_url, v.role, v.email_confirmed_at,
      v.is_anonymous, v.deleted_at, v.created_at) as in_sync,
  v.email,
  v.phone,
  v.full_name,
  v.avatar_url,
  v.role,
  v.email_confirmed_at,
  v.is_anonymous,
  v.deleted_at,
  v.created_at,
  -- The role an access token may carry: the role without the sign-up choice, since
  -- user_metadata is the user's to rewrite at any time (user_sync.token_role).
  coalesce(r.granted, r.kept, r.fallback) as token_role
from auth.users a
left join public.users u on u.id = a.id
-- The role, in order: a known role in app_metadata (which only the service role can write);
-- the current role while it is self-assignable; at creation only, a self-assignable role the
-- user asked for in user_metadata; else the default. A soft-deleted user keeps only the
-- default. (A missing role_lists row leaves the role null, which public.users refuses: a
-- recorded failure, never a silent skip.)
left join user_sync.role_lists l on l.singleton
cross join lateral (
  select
    case when a.deleted_at is null and a.raw_app_meta_data ->> 'role' = any (l.known)
      then a.raw_app_meta_data ->> 'role' end as granted,
    case when a.deleted_at is null and u.role = any (l.self_assignable)
      then u.role end as kept,
    case when a.deleted_at is null and u.id is null
      and a.raw_user_meta_data ->> 'role' = any (l.self_assignable)
      then a.raw_user_meta_data ->> 'role' end as chosen,
    l.fallback
) r
cross join lateral (
  select
    -- Auth-owned columns follow auth.users on every sync. A soft-deleted user (GoTrue's
    -- deleteUser(id, true)) has an obfuscated email and phone and emptied metadata: none of
    -- that is copied, and the profile is cleared.
    -- (auth.users.email is varchar(255) on Supabase; public.users.email is text.)
    case when a.deleted_at is null then a.email::text end as email,
    case when a.deleted_at is null then a.phone::text end as phone,
    -- Profile columns: taken from the provider's metadata while empty, then the user's own.
    -- Google puts a name in full_name or name and a picture in picture; GitHub a login in
    -- user_name or preferred_username and a picture in avatar_url. No name stays null rather
    -- than becoming the email. Metadata is cut to the column's bound (2/9); a picture URL too
    -- long to keep whole is left out rather than cut into a broken link.
    case when a.deleted_at is null then coalesce(
      nullif(u.full_name, ''),
      left(coalesce(
        nullif(btrim(a.raw_user_meta_data ->> 'full_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'user_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'username'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'preferred_username'), '')
      ), 200)
    ) end as full_name,
    case when a.deleted_at is null then coalesce(
      nullif(u.avatar_url, ''),
      case
        when char_length(nullif(btrim(a.raw_user_meta_data ->> 'avatar_url'), '')) <= 2048
          then btrim(a.raw_user_meta_data ->> 'avatar_url')
        when char_length(nullif(btrim(a.raw_user_meta_data ->> 'picture'), '')) <= 2048
          then btrim(a.raw_user_meta_data ->> 'picture')
      end
    ) end as avatar_url,
    coalesce(r.granted, r.kept, r.chosen, r.fallback) as role,
    a.email_confirmed_at,
    a.is_anonymous,
    a.deleted_at,
    coalesce(a.created_at, u.created_at, now()) as created_at
) v;

comment on view user_sync.mapped is
  'The sync mapping: for every auth user, the public.users values it should have given its current app row, has_app_row, in_sync, and the role its access tokens may carry.';
revoke all on table user_sync.mapped from public, anon, authenticated, service_role;

-- The trigger on auth.users (5/9) keeps its triggers (they belong to auth.users, which the
-- migration role does not own) and gets a new body.
--
-- A new user is one INSERT … SELECT from the view: a primary-key probe of the auth row just
-- written and of the (absent) app row. A change locks the user's app row, then writes what
-- the view says in a new statement, which sees the row as locked.
--
-- Settings: `enable_seqscan = off` keeps both probes on their primary keys whatever the
-- statistics say (a plan cached while public.users was small would otherwise scan it once
-- per row of a bulk statement). `jit = off`: a plan left with only a disabled scan (a table
-- without an index for it, now or in a project's own trigger) has a cost past JIT's threshold,
-- and every execution would be compiled (about a quarter of a second a row).
create or replace function user_sync.on_auth_user_change()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Never wait without limit: a row lock held on the user's app row, or on the role row the
-- foreign key checks, would hold the sign-up with it. A timeout is a failure like any other.
set lock_timeout = '1s'
set enable_seqscan = off
set jit = off
as $$
declare
  v_found boolean;
begin
  begin
    -- Names this write in the audit trail (3/9); cleared right after, and undone with the
    -- block on failure. (A function's SET clause cannot name a custom setting on hosted
    -- Supabase, where the migration role is not a superuser.)
    perform pg_catalog.set_config('user_sync.source', 'trigger', true);
    if tg_op = 'UPDATE' then
      -- The app row as it is, locked until this transaction ends, so that a profile the user
      -- filled in and a self-assigned role are mapped from what is there.
      perform from public.users u where u.id = new.id for update;
      v_found := found;
    end if;
    if v_found then
      update public.users u set
        email = m.email,
        phone = m.phone,
        full_name = m.full_name,
        avatar_url = m.avatar_url,
        role = m.role,
        email_confirmed_at = m.email_confirmed_at,
        is_anonymous = m.is_anonymous,
        deleted_at = m.deleted_at,
        created_at = m.created_at,
        updated_at = now()
      from user_sync.mapped m
      where m.id = new.id and u.id = new.id and not m.in_sync;
    else
      -- A new auth user (or one whose row an earlier failure left missing). Nobody else can
      -- write it meanwhile: a new auth row is invisible to other transactions until this one
      -- commits. Should a row exist all the same, the unique violation is recorded below.
      insert into public.users (
        id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
        deleted_at, created_at, updated_at
      )
      select m.id, m.email, m.phone, m.full_name, m.avatar_url, m.role, m.email_confirmed_at,
        m.is_anonymous, m.deleted_at, m.created_at, now()
      from user_sync.mapped m
      where m.id = new.id;
    end if;
    perform pg_catalog.set_config('user_sync.source', '', true);
  exception when others then
    perform user_sync.record_failure(new.id, 'trigger', sqlstate, sqlerrm);
  end;
  return null;
end;
$$;

-- The plan (6/9) reads the view: the drift of the auth users with p_lo <= id <= p_hi (and id
-- in p_ids when given). Read-only; anyone allowed can read drift from it:
--   select * from user_sync.plan('00000000-0000-0000-0000-000000000000',
--     'ffffffff-ffff-ffff-ffff-ffffffffffff') where not in_sync;
create or replace function user_sync.plan(p_lo uuid, p_hi uuid, p_ids uuid[] default null)
returns table (
  id uuid,
  has_app_row boolean,
  in_sync boolean,
  email text,
  phone text,
  full_name text,
  avatar_url text,
  role text,
  email_confirmed_at timestamptz,
  is_anonymous boolean,
  deleted_at timestamptz,
  created_at timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set jit = off
as $$
begin
  return query
  select m.id, m.has_app_row, m.in_sync, m.email, m.phone, m.full_name, m.avatar_url, m.role,
    m.email_confirmed_at, m.is_anonymous, m.deleted_at, m.created_at
  from user_sync.mapped m
  where m.id >= p_lo and m.id <= p_hi
    and (p_ids is null or m.id in (select pg_catalog.unnest(p_ids)));
end;
$$;

-- Writes the app rows of the given auth users: inserts the missing, updates the stale, leaves
-- rows in step alone, and says which it could not write now because a transaction holds them.
--
-- Concurrency. A row is written only under a share lock on its auth row (no change of that
-- user can commit before this transaction, and none is in flight: the insert of a missing row
-- can then neither wait on the app row an in-flight change's trigger is inserting nor on a
-- delete of the user) and, when it exists, a lock on the app row (no profile edit either),
-- all taken without waiting: held rows are deferred, since the transaction holding them syncs
-- them itself (a change of the auth user) or is a profile edit this sync would otherwise wait
-- on. The write is a new statement, which sees the rows as locked.
create function user_sync.write_batch(
  p_missing uuid[],
  p_stale uuid[],
  out inserted integer,
  out updated integer,
  out deferred integer
)
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set jit = off
as $$
declare
  v_locked uuid[] := '{}'::uuid[];
begin
  inserted := 0;
  updated := 0;
  deferred := 0;
  if pg_catalog.cardinality(p_missing) > 0 then
    select coalesce(pg_catalog.array_agg(l.id), '{}'::uuid[]) into v_locked
    from (
      select a.id from auth.users a where a.id in (select pg_catalog.unnest(p_missing))
      for share skip locked
    ) l;
    insert into public.users (
      id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
      deleted_at, created_at, updated_at
    )
    select m.id, m.email, m.phone, m.full_name, m.avatar_url, m.role, m.email_confirmed_at,
      m.is_anonymous, m.deleted_at, m.created_at, now()
    from user_sync.mapped m
    where m.id in (select pg_catalog.unnest(v_locked)) and not m.has_app_row
    on conflict (id) do nothing;
    get diagnostics inserted = row_count;
    deferred := pg_catalog.cardinality(p_missing) - inserted;
  end if;
  if pg_catalog.cardinality(p_stale) > 0 then
    select coalesce(pg_catalog.array_agg(l.id), '{}'::uuid[]) into v_locked
    from (
      select a.id from auth.users a where a.id in (select pg_catalog.unnest(p_stale))
      for share skip locked
    ) l;
    select coalesce(pg_catalog.array_agg(l.id), '{}'::uuid[]) into v_locked
    from (
      select u.id from public.users u where u.id in (select pg_catalog.unnest(v_locked))
      for no key update skip locked
    ) l;
    update public.users u set
      email = m.email,
      phone = m.phone,
      full_name = m.full_name,
      avatar_url = m.avatar_url,
      role = m.role,
      email_confirmed_at = m.email_confirmed_at,
      is_anonymous = m.is_anonymous,
      deleted_at = m.deleted_at,
      created_at = m.created_at,
      updated_at = now()
    from user_sync.mapped m
    where m.id = u.id and u.id in (select pg_catalog.unnest(v_locked)) and not m.in_sync;
    get diagnostics updated = row_count;
    deferred := deferred + pg_catalog.cardinality(p_stale) - pg_catalog.cardinality(v_locked);
  end if;
end;
$$;

-- Syncs the auth users with p_lo <= id <= p_hi (and, when p_ids is given, id in p_ids), or
-- with p_dry_run says what a sync would do. Returns the counts of a resync report, plus
-- `deferred` (rows a transaction holds, see write_batch) and `sqlstate` (the last failure's).
-- App rows without an auth user are user_sync.remove_orphans' business.
--
-- One pass: the view's drift is read through a cursor, and written in batches of
-- v_batch users, each batch its own statements. So memory stays flat however many users
-- there are: the batch arrays are bounded, the join spills to disk past work_mem, and the
-- foreign keys' checks (queued per written row until the statement ends) are drained per
-- batch. The whole id range (a bare resync_users()) is planned as a hash join, linear
-- whatever the statistics say; anything narrower as primary-key probes.
create or replace function user_sync.sync_users(
  p_lo uuid,
  p_hi uuid,
  p_ids uuid[],
  p_dry_run boolean,
  p_source text
)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
-- Set here so that the changes below (the whole-range plan) end with the function.
set enable_nestloop = on
set enable_mergejoin = on
set jit = off
as $$
declare
  v_batch constant integer := 5000;
  v_everyone boolean := p_ids is null
    and p_lo = '00000000-0000-0000-0000-000000000000'::uuid
    and p_hi = 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid;
  v_seen jsonb;
  v_drift refcursor;
  v_id uuid;
  v_has_app_row boolean;
  v_missing uuid[] := '{}'::uuid[];
  v_stale uuid[] := '{}'::uuid[];
  v_auth_users integer;
  v_missing_count integer := 0;
  v_stale_count integer := 0;
  v_inserted integer := 0;
  v_updated integer := 0;
  v_deferred integer := 0;
  v_failed integer := 0;
  v_sqlstate text;
  v_written record;
  v_one record;
begin
  -- The failures on record before this sync. Only these may be drained at the end: one
  -- recorded meanwhile (by a sign-up this sync never saw) must stay.
  select coalesce(pg_catalog.jsonb_agg(
    pg_catalog.jsonb_build_array(f.user_id, f.attempts, f.last_failed_at)), '[]')
  into v_seen
  from user_sync.sync_failures f
  where f.user_id >= p_lo and f.user_id <= p_hi
    and (p_ids is null or f.user_id in (select pg_catalog.unnest(p_ids)));

  if not p_dry_run then
    perform pg_catalog.set_config('user_sync.source', p_source, true);
  end if;

  if v_everyone then
    -- Hash joins over whole tables: each table read once, in physical order.
    perform pg_catalog.set_config('enable_seqscan', 'on', true);
    perform pg_catalog.set_config('enable_nestloop', 'off', true);
    perform pg_catalog.set_config('enable_mergejoin', 'off', true);
    select count(*) into v_auth_users from auth.users;
    open v_drift for
      select m.id, m.has_app_row from user_sync.mapped m where not m.in_sync;
    perform pg_catalog.set_config('enable_seqscan', 'off', true);
    perform pg_catalog.set_config('enable_nestloop', 'on', true);
    perform pg_catalog.set_config('enable_mergejoin', 'on', true);
  else
    select count(*) into v_auth_users
    from auth.users a
    where a.id >= p_lo and a.id <= p_hi
      and (p_ids is null or a.id in (select pg_catalog.unnest(p_ids)));
    open v_drift for
      select m.id, m.has_app_row from user_sync.mapped m
      where m.id >= p_lo and m.id <= p_hi
        and (p_ids is null or m.id in (select pg_catalog.unnest(p_ids)))
        and not m.in_sync;
  end if;

  loop
    fetch v_drift into v_id, v_has_app_row;
    if found then
      if v_has_app_row then
        v_stale_count := v_stale_count + 1;
        if not p_dry_run then
          v_stale := v_stale || v_id;
        end if;
      else
        v_missing_count := v_missing_count + 1;
        if not p_dry_run then
          v_missing := v_missing || v_id;
        end if;
      end if;
    end if;
    if not p_dry_run and (not found
      or pg_catalog.cardinality(v_missing) + pg_catalog.cardinality(v_stale) >= v_batch)
    then
      if pg_catalog.cardinality(v_missing) + pg_catalog.cardinality(v_stale) > 0 then
        begin
          v_written := user_sync.write_batch(v_missing, v_stale);
          v_inserted := v_inserted + v_written.inserted;
          v_updated := v_updated + v_written.updated;
          v_deferred := v_deferred + v_written.deferred;
        exception when others then
          -- One bad row must not block the rest: one user at a time, recording those that
          -- fail.
          for v_one in
            select array[x] as missing, '{}'::uuid[] as stale from pg_catalog.unnest(v_missing) x
            union all
            select '{}'::uuid[], array[x] from pg_catalog.unnest(v_stale) x
          loop
            begin
              v_written := user_sync.write_batch(v_one.missing, v_one.stale);
              v_inserted := v_inserted + v_written.inserted;
              v_updated := v_updated + v_written.updated;
              v_deferred := v_deferred + v_written.deferred;
            exception when others then
              v_failed := v_failed + 1;
              v_sqlstate := sqlstate;
              perform user_sync.record_failure(
                coalesce(v_one.missing[1], v_one.stale[1]), p_source, sqlstate, sqlerrm);
            end;
          end loop;
        end;
      end if;
      v_missing := '{}'::uuid[];
      v_stale := '{}'::uuid[];
    end if;
    exit when not found;
  end loop;
  close v_drift;
  perform pg_catalog.set_config('user_sync.source', '', true);

  -- Drain the failures seen before, unless they failed again meanwhile (record_failure moved
  -- them on): each such user that is now in step, or gone, is repaired.
  if not p_dry_run and v_seen <> '[]' then
    delete from user_sync.sync_failures f
    using pg_catalog.jsonb_array_elements(v_seen) seen
    where f.user_id = (seen ->> 0)::uuid
      and f.attempts = (seen ->> 1)::integer
      and f.last_failed_at = (seen ->> 2)::timestamptz
      and not exists (
        select from user_sync.mapped m where m.id = f.user_id and not m.in_sync);
  end if;

  return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'auth_users', v_auth_users,
    'app_users', v_auth_users - v_missing_count,
    'missing', v_missing_count,
    'stale', v_stale_count,
    'orphaned', 0,
    'inserted', v_inserted,
    'updated', v_updated,
    'deleted', 0,
    'unchanged', v_auth_users - v_missing_count - v_stale_count,
    'failed', v_failed,
    'deferred', v_deferred,
    'sqlstate', v_sqlstate
  ));
end;
$$;

-- Syncs one user (or, with p_dry_run, says what a sync would do) and says what happened, with
-- the counts of a resync. Shared by sync_user, sync_my_user and the Postgres hooks.
create or replace function user_sync.sync_one(
  p_user_id uuid,
  p_source text,
  p_dry_run boolean default false
)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set jit = off
as $$
declare
  v_now record;
  v_counts jsonb;
  v_action text;
begin
  -- The common case, taken on almost every token: the row is in step and no failure is on
  -- record. One statement of primary-key probes; nothing written or locked.
  select m.in_sync, m.role, m.token_role,
    exists (select from user_sync.sync_failures f where f.user_id = m.id) as failed_before
  into v_now
  from user_sync.mapped m
  where m.id = p_user_id;
  if v_now.in_sync and not v_now.failed_before then
    return pg_catalog.jsonb_build_object('user_id', p_user_id, 'action', 'unchanged',
      'role', v_now.role, 'user_role', v_now.token_role,
      'counts', pg_catalog.jsonb_build_object('auth_users', 1, 'app_users', 1, 'unchanged', 1));
  end if;
  begin
    v_counts := user_sync.sync_users(p_user_id, p_user_id, null, p_dry_run, p_source);
    if (v_counts ->> 'auth_users')::integer = 0 then
      v_counts := user_sync.add_counts(v_counts,
        user_sync.remove_orphans(null, p_user_id, array[p_user_id], p_dry_run, p_source));
      v_action := case when (v_counts ->> 'orphaned')::integer > 0 then 'deleted'
        else 'not_found' end;
    else
      v_action := case
        when (v_counts ->> 'failed')::integer > 0 then 'failed'
        when (v_counts ->> 'deferred')::integer > 0 then 'deferred'
        when (v_counts ->> 'missing')::integer > 0 then 'inserted'
        when (v_counts ->> 'stale')::integer > 0 then 'updated'
        else 'unchanged'
      end;
    end if;
  exception when others then
    -- What failed outside the write (say, the plan on a broken row): on record all the same.
    if not p_dry_run then
      perform user_sync.record_failure(p_user_id, p_source, sqlstate, sqlerrm);
    end if;
    v_action := 'failed';
    v_counts := pg_catalog.jsonb_build_object('auth_users', 1, 'failed', 1, 'sqlstate', sqlstate);
  end;
  return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'action', v_action,
    'sqlstate', v_counts ->> 'sqlstate'
  )) || pg_catalog.jsonb_build_object(
    'role', (select u.role from public.users u where u.id = p_user_id),
    'counts', user_sync.add_counts(v_counts, '{}')
  );
end;
$$;

-- The role an access token may carry as user_role: the view's token_role, which does not
-- depend on the sync having written (a revoked admin whose sync fails or is deferred still
-- gets the default) and never reads user_metadata. A user the database cannot see yet (the
-- first token of a sign-up minted inside the sign-up's uncommitted transaction, seen from
-- another session) gets the creation rule (the view's role for a user with no app row: a
-- known app_metadata role, else a self-assignable user_metadata role, else the default)
-- applied to the token's claims, which Auth filled from that row and signed; without claims,
-- null.
create or replace function user_sync.token_role(p_user_id uuid, p_claims jsonb)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set jit = off
as $$
declare
  v_role text;
begin
  select m.token_role into v_role from user_sync.mapped m where m.id = p_user_id;
  if found then
    return v_role;
  end if;
  if jsonb_typeof(p_claims) is distinct from 'object' then
    return null;
  end if;
  return coalesce(
    (select x.role from user_sync.roles x
      where x.role = p_claims -> 'app_metadata' ->> 'role'),
    (select x.role from user_sync.roles x
      where x.self_assignable and x.role = p_claims -> 'user_metadata' ->> 'role'),
    (select x.role from user_sync.roles x where x.is_default));
end;
$$;

-- Repairs drift between auth.users and public.users, or reports it (p_dry_run). Contract and
-- report: docs/sql-api.md. Unchanged but for a bare call, which is now one pass.
create or replace function public.resync_users(
  p_dry_run boolean default false,
  p_user_ids uuid[] default null,
  p_batch_size integer default null,
  p_cursor uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_dry_run boolean := coalesce(p_dry_run, false);
  v_ids uuid[];
  v_scope text;
  v_limit integer;
  v_after uuid := p_cursor;
  v_first uuid;
  v_last uuid;
  v_report jsonb := user_sync.add_counts('{}', '{}');
  v_done boolean := false;
begin
  if p_user_ids is not null and (p_batch_size is not null or p_cursor is not null) then
    raise exception using errcode = '22023',
      message = 'resync_users: p_user_ids cannot be combined with p_batch_size or p_cursor.';
  end if;
  if p_batch_size is not null and (p_batch_size < 1 or p_batch_size > 50000) then
    raise exception using errcode = '22023', message = pg_catalog.format(
      'resync_users: p_batch_size must be between 1 and 50000, got %s.', p_batch_size);
  end if;
  if p_cursor is not null and p_batch_size is null then
    raise exception using errcode = '22023',
      message = 'resync_users: p_cursor needs p_batch_size (one batch after the cursor).';
  end if;
  if p_user_ids is not null and pg_catalog.cardinality(p_user_ids) > 50000 then
    raise exception using errcode = '22023',
      message = 'resync_users: at most 50000 p_user_ids per call; use batches for more.';
  end if;

  if p_user_ids is not null then
    v_scope := 'ids';
    v_ids := array(select distinct i from pg_catalog.unnest(p_user_ids) i where i is not null
      order by 1);
    if pg_catalog.cardinality(v_ids) > 0 then
      v_first := v_ids[1];
      v_last := v_ids[pg_catalog.cardinality(v_ids)];
      v_report := user_sync.add_counts(v_report,
        user_sync.sync_users(v_first, v_last, v_ids, v_dry_run, 'resync'));
      v_report := user_sync.add_counts(v_report,
        user_sync.remove_orphans(null, v_last, v_ids, v_dry_run, 'resync'));
    end if;
    v_done := true;
  elsif p_batch_size is null then
    -- Everyone, in one pass over both tables (user_sync.sync_users writes in batches of its
    -- own, so memory does not grow with the user count).
    v_scope := 'all';
    v_report := user_sync.add_counts(v_report, user_sync.sync_users(
      '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', null,
      v_dry_run, 'resync'));
    v_report := user_sync.add_counts(v_report, user_sync.remove_orphans(
      null, 'ffffffff-ffff-ffff-ffff-ffffffffffff', null, v_dry_run, 'resync'));
    v_done := true;
  else
    v_scope := 'batch';
    v_limit := p_batch_size;
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
    if v_first is not null then
      v_report := user_sync.add_counts(v_report,
        user_sync.sync_users(v_first, v_last, null, v_dry_run, 'resync'));
    end if;
    -- App rows are checked over the gap before the batch too, so orphans there are seen.
    v_report := user_sync.add_counts(v_report, user_sync.remove_orphans(
      v_after,
      case when v_done then 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid else v_last end,
      null, v_dry_run, 'resync'));
  end if;

  return v_report || pg_catalog.jsonb_build_object(
    'dry_run', v_dry_run,
    'scope', v_scope,
    'failures_pending', (select count(*) from user_sync.sync_failures),
    'next_cursor', case when v_done then null else v_last end,
    'done', v_done
  );
end;
$$;
comment on function public.resync_users(boolean, uuid[], integer, uuid) is
  'Repairs drift between auth.users and public.users (or reports it with p_dry_run) and returns a report. Service role only.';
revoke all on function public.resync_users(boolean, uuid[], integer, uuid)
  from public, anon, authenticated;
grant execute on function public.resync_users(boolean, uuid[], integer, uuid) to service_role;

drop function user_sync.write_users(uuid[]);
drop function user_sync.map_user(auth.users, public.users);
drop function user_sync.values_of(public.users);

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
