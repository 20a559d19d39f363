-- supabase-user-sync 7/8: syncing on request. The internals that sync a set of users, and the
-- three functions the API exposes: sync_user (service role), sync_my_user (a signed-in user)
-- and resync_users (service role). docs/sql-api.md is their contract.
--
-- Concurrency. The trigger on auth.users syncs inside the transaction that changes an auth
-- user, so it is never stale. A sync from anywhere else reads the user in its own snapshot, and
-- a change committed after that snapshot must not be overwritten by values planned from before
-- it. So before it writes, a sync takes a share lock on each auth row it is about to write
-- (and, for a stale row, a lock on the app row), skipping rows that someone holds (a
-- transaction changing that user, whose own trigger will sync it, or a profile edit in
-- flight: the sync says 'deferred' and writes nothing for it), and then reads the mapping
-- again, in a new statement, which sees everything committed before its locks. Until it
-- commits, no change of those users can commit, and no row is written from an older view.
--
-- Why row locks: PostgreSQL keeps them in the rows themselves, not in the shared lock table,
-- so a resync of a million users takes no more shared memory than a resync of one; they are
-- released with the transaction; and skipping held rows means a sync never waits, even when
-- it runs inside the very transaction that holds the row (a Postgres-function hook in
-- GoTrue's token transaction). Only rows that need a write are locked: a resync with nothing
-- to do locks and writes nothing.
--
-- Every function here that reads user_sync.mapped sets `enable_seqscan = off` and `jit = off`:
-- primary-key probes whatever the statistics say (a table scan inside a loop is quadratic, and
-- an analysed, still empty public.users invites one), and no JIT for what index probes do in
-- milliseconds (disabled scans inflate the cost estimates past its threshold). Only a resync
-- of everyone switches to a hash join, inside sync_users.

-- Whether an app row can outlive its auth user: not while a validated, immediate foreign key
-- from public.users.id cascades deletes of auth.users. Orphans appear only when it was
-- dropped or deferred, or rows were copied in without it.
create function user_sync.orphans_possible()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return not exists (
    select from pg_catalog.pg_constraint c
    join pg_catalog.pg_attribute att
      on att.attrelid = c.conrelid and att.attnum = c.conkey[1] and att.attname = 'id'
    where c.conrelid = 'public.users'::pg_catalog.regclass
      and c.confrelid = 'auth.users'::pg_catalog.regclass
      and c.contype = 'f' and c.convalidated and not c.condeferrable
      and c.confdeltype = 'c' and pg_catalog.cardinality(c.conkey) = 1
  );
end;
$$;

-- The plan: for each auth user with p_lo <= id <= p_hi (and id in p_ids when given), the
-- values the mapping wants, whether it has an app row, and whether that row already holds
-- them: user_sync.mapped over a range of ids. Read-only; drift can be read from it:
--   select * from user_sync.plan('00000000-0000-0000-0000-000000000000',
--     'ffffffff-ffff-ffff-ffff-ffffffffffff') where not in_sync;
create function user_sync.plan(p_lo uuid, p_hi uuid, p_ids uuid[] default null)
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

-- Adds the counts of two reports (the keys of docs/sql-api.md's resync report).
create function user_sync.add_counts(p_a jsonb, p_b jsonb)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    select jsonb_object_agg(k, coalesce((p_a ->> k)::bigint, 0) + coalesce((p_b ->> k)::bigint, 0))
    from unnest(array[
      'auth_users', 'app_users', 'missing', 'stale', 'orphaned',
      'inserted', 'updated', 'deleted', 'unchanged', 'failed'
    ]) as k
  );
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
create function user_sync.sync_users(
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

-- Removes (or, with p_dry_run, counts) app rows whose auth user is gone, among the app rows
-- with p_after < id <= p_until (p_after null: no lower bound) and id in p_ids when given.
-- Only where the foreign key cannot already rule them out. The check and the delete are one
-- statement, so they see the same snapshot: a sign-up that commits meanwhile is seen with
-- both its rows or neither, and its app row is never taken for an orphan.
create function user_sync.remove_orphans(
  p_after uuid,
  p_until uuid,
  p_ids uuid[],
  p_dry_run boolean,
  p_source text
)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set enable_nestloop = off
set jit = off
as $$
declare
  v_orphaned integer := 0;
  v_deleted integer := 0;
begin
  if not user_sync.orphans_possible() then
    return user_sync.add_counts('{}', '{}');
  end if;
  if p_dry_run then
    select count(*) into v_orphaned
    from public.users u
    where (p_after is null or u.id > p_after) and u.id <= p_until
      and (p_ids is null or u.id in (select pg_catalog.unnest(p_ids)))
      and not exists (select from auth.users a where a.id = u.id);
  else
    perform pg_catalog.set_config('user_sync.source', p_source, true);
    delete from public.users u
    where (p_after is null or u.id > p_after) and u.id <= p_until
      and (p_ids is null or u.id in (select pg_catalog.unnest(p_ids)))
      and not exists (select from auth.users a where a.id = u.id);
    get diagnostics v_deleted = row_count;
    perform pg_catalog.set_config('user_sync.source', '', true);
    v_orphaned := v_deleted;
  end if;
  return user_sync.add_counts('{}', pg_catalog.jsonb_build_object(
    'app_users', v_orphaned, 'orphaned', v_orphaned, 'deleted', v_deleted));
end;
$$;

-- Syncs one user (or, with p_dry_run, says what a sync would do) and says what happened, with
-- the counts of a resync. Shared by sync_user, sync_my_user and the Postgres hooks.
create function user_sync.sync_one(
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
  select m.in_sync, m.role,
    exists (select from user_sync.sync_failures f where f.user_id = m.id) as failed_before
  into v_now
  from user_sync.mapped m
  where m.id = p_user_id;
  if v_now.in_sync and not v_now.failed_before then
    return pg_catalog.jsonb_build_object('user_id', p_user_id, 'action', 'unchanged',
      'role', v_now.role, 'user_role', v_now.role,
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

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;

-- For the service role (the edge function): sync one user by id. p_source names the path for
-- the audit trail: 'hook:<hook name>', 'webhook', or the default 'sync_user'. p_claims: the
-- custom-access-token hook's claims, for user_role when the database cannot see the user yet.
create function public.sync_user(
  p_user_id uuid,
  p_source text default 'sync_user',
  p_claims jsonb default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_result jsonb;
begin
  if p_user_id is null then
    raise exception using errcode = '22023', message = 'sync_user: p_user_id is required.';
  end if;
  if p_source is null or p_source !~ '^(sync_user|webhook|hook:[a-z0-9-]{1,40})$' then
    raise exception using errcode = '22023', message =
      'sync_user: p_source must be ''sync_user'', ''webhook'' or ''hook:<name>''.';
  end if;
  v_result := user_sync.sync_one(p_user_id, p_source) - 'counts';
  if v_result ? 'user_role' then
    return v_result;
  end if;
  -- A statement of its own: token_role is stable, so within sync_one's statement it would
  -- read the snapshot from before the sync wrote.
  return v_result
    || pg_catalog.jsonb_build_object('user_role', user_sync.token_role(p_user_id, p_claims));
end;
$$;
comment on function public.sync_user(uuid, text, jsonb) is
  'Syncs public.users for one auth user and returns {user_id, action, role, user_role}. Service role only.';
revoke all on function public.sync_user(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function public.sync_user(uuid, text, jsonb) to service_role;

-- For a signed-in user: make sure my own row exists and is current (audited as self_heal).
--
-- The work needs the owner's rights (it writes public.users and reads auth.users), but a
-- security definer function that `authenticated` can execute in a schema the Data API exposes
-- is what Supabase's Security Advisor warns about. So the definer lives in user_sync_api, a
-- schema the API does not expose and that holds nothing else, and public.sync_my_user() is a
-- plain (security invoker) function that calls it: the Data API's `rpc('sync_my_user')` works
-- as before, and nothing privileged sits in an exposed schema.
create schema user_sync_api;
comment on schema user_sync_api is
  'supabase-user-sync: the one privileged function a signed-in user may reach, through public.sync_my_user(). Not exposed through the Data API.';
revoke all on schema user_sync_api from public;
grant usage on schema user_sync_api to authenticated;

create function user_sync_api.sync_my_user()
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id uuid := auth.uid();
begin
  if v_user_id is null then
    raise exception using
      errcode = '42501',
      message = 'sync_my_user() needs a signed-in user: the request carries no user id.';
  end if;
  return user_sync.sync_one(v_user_id, 'self_heal') - 'counts' - 'user_role';
end;
$$;
revoke all on function user_sync_api.sync_my_user() from public, anon, service_role;
grant execute on function user_sync_api.sync_my_user() to authenticated;

create function public.sync_my_user()
returns jsonb
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
  select user_sync_api.sync_my_user()
$$;
comment on function public.sync_my_user() is
  'Syncs the signed-in user''s own public.users row and returns {user_id, action, role}.';
-- For a signed-in user only: Supabase's default privileges also give new functions to anon
-- and the service role, which has no user id to sync.
revoke all on function public.sync_my_user() from public, anon, service_role;
grant execute on function public.sync_my_user() to authenticated;

-- Repairs drift between auth.users and public.users, or reports it (p_dry_run). Contract and
-- report: docs/sql-api.md. A bare call is one pass over both tables (user_sync.sync_users
-- writes in batches of its own); with p_batch_size, one keyset batch per call.
create function public.resync_users(
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
