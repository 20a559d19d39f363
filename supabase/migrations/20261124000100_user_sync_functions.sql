-- supabase-user-sync, part 2: the one sync mapping and everything that calls it.
--
-- user_sync.user_plan is the mapping: for every auth user, the public.users row it should have,
-- given the row it has now. Every path (the trigger, the hooks through sync_user, sync_my_user,
-- resync) writes through user_sync.apply(), the only statement that writes public.users rows.
--
-- All functions are security definer, owned by the migration role, with an empty search_path
-- and schema-qualified names: GoTrue's role (supabase_auth_admin) resolves unqualified names in
-- schema auth and has no rights on public, so anything less fails sign-up on Supabase.

-- The mapping, for the auth users with p_lo <= id <= p_hi. An inlinable SQL function, so the
-- id range reaches both tables' primary-key indexes: a sync of one user reads two index entries,
-- a batch reads two index ranges, and nothing ever scans a whole table.
create function user_sync.user_plan(p_lo uuid, p_hi uuid)
returns table (
  id uuid,
  app_row_exists boolean,
  in_sync boolean,
  email text,
  phone text,
  full_name text,
  avatar_url text,
  role text,
  email_confirmed_at timestamptz,
  is_anonymous boolean,
  created_at timestamptz
)
language sql
stable
as $$
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
    d.email_confirmed_at, d.is_anonymous, d.created_at
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
      -- Providers name them differently (Google: full_name/name/picture, GitHub: user_name/
      -- preferred_username/avatar_url). A missing name stays null rather than becoming the email.
      coalesce(
        nullif(u.full_name, ''),
        nullif(btrim(a.raw_user_meta_data ->> 'full_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'user_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'username'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'preferred_username'), '')
      ) as full_name,
      coalesce(
        nullif(u.avatar_url, ''),
        nullif(btrim(a.raw_user_meta_data ->> 'avatar_url'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'picture'), '')
      ) as avatar_url,
      -- Role. At creation: a known role in app_metadata (written only by the service role),
      -- else a self-assignable role the user asked for in user_metadata, else the default.
      -- Afterwards only app_metadata can change it: user_metadata is writable by the user
      -- (supabase.auth.updateUser), so reading it later would let anyone promote themselves.
      case
        when u.id is null then coalesce(granted.role, chosen.role, fallback.role)
        else coalesce(granted.role, u.role)
      end as role,
      u.email as cur_email,
      u.phone as cur_phone,
      u.full_name as cur_full_name,
      u.avatar_url as cur_avatar_url,
      u.role as cur_role,
      u.email_confirmed_at as cur_email_confirmed_at,
      u.is_anonymous as cur_is_anonymous,
      u.created_at as cur_created_at
    from auth.users a
    -- The same range on both sides: the planner cannot infer it for public.users from the
    -- join, and without it a batch would read all of public.users.
    left join (
      select * from public.users pu where pu.id >= p_lo and pu.id <= p_hi
    ) u on u.id = a.id
    left join user_sync.roles granted on granted.role = a.raw_app_meta_data ->> 'role'
    left join user_sync.roles chosen
      on chosen.role = a.raw_user_meta_data ->> 'role' and chosen.self_assignable
    left join user_sync.roles fallback on fallback.is_default
    where a.id >= p_lo and a.id <= p_hi
  ) d
$$;

comment on function user_sync.user_plan(uuid, uuid) is
  'The sync mapping: for each auth user in the id range, the public.users values it should have (given its current row) and whether it already has them.';

-- Writes the mapping for the auth users with p_lo <= id <= p_hi, and counts what it found and
-- did. p_dry_run computes the same counts with the same statement and writes nothing.
create function user_sync.apply(
  p_lo uuid,
  p_hi uuid,
  p_dry_run boolean default false,
  out auth_users integer,
  out app_users integer,
  out missing integer,
  out stale integer,
  out inserted integer,
  out updated integer,
  out unchanged integer
)
language plpgsql
security definer
set search_path = ''
-- One plan, whatever the statistics say: primary-key range scans of both tables, merged or
-- hashed, never a nested loop over a table scan. With an empty, analysed public.users the
-- planner would otherwise scan the growing table once per row (a quadratic resync).
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_nestloop = off
-- The disabled plan types inflate cost estimates, which would otherwise trigger JIT
-- compilation (hundreds of milliseconds per call for no gain at these sizes).
set jit = off
as $$
begin
  with plan as materialized (
    select p.* from user_sync.user_plan(p_lo, p_hi) p
  ),
  written as (
    insert into public.users as u (
      id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
      created_at, updated_at
    )
    select
      plan.id, plan.email, plan.phone, plan.full_name, plan.avatar_url, plan.role,
      plan.email_confirmed_at, plan.is_anonymous, plan.created_at, now()
    from plan
    -- Only rows that need it, so an in-sync row is neither written nor locked.
    where not plan.in_sync and not p_dry_run
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
    returning (u.xmax = 0) as was_inserted
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
$$;

-- Remembers a sync that could not be written. Never raises: it is called from the trigger,
-- where raising would block sign-up.
create function user_sync.record_failure(
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
exception when others then
  raise warning 'user_sync: could not record a sync failure for user %: % (%)',
    p_user_id, sqlerrm, sqlstate;
end;
$$;

-- The trigger on auth.users. It must never raise: an exception here becomes "Database error
-- saving new user" and blocks every sign-up. A failure rolls back only the sync (the inner
-- block is a subtransaction), is recorded, and the auth write commits; resync repairs it.
create function user_sync.on_auth_user_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  begin
    perform user_sync.apply(new.id, new.id);
    -- A user that syncs again is no longer a failure (an indexed probe of a usually empty table).
    delete from user_sync.sync_failures where user_id = new.id;
  exception when others then
    perform user_sync.record_failure(new.id, 'trigger', sqlstate, sqlerrm);
  end;
  return null;
end;
$$;

create trigger user_sync_after_insert
  after insert on auth.users
  for each row execute function user_sync.on_auth_user_change();

-- Only the columns the mapping reads, and only when one of them really changed: a sign-in
-- updates last_sign_in_at and updated_at, and GoTrue rewrites unchanged metadata; none of that
-- may cost a sync.
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
    or old.raw_app_meta_data is distinct from new.raw_app_meta_data
    or old.raw_user_meta_data is distinct from new.raw_user_meta_data
  )
  execute function user_sync.on_auth_user_change();

-- Deleting an auth user deletes the app row through the foreign key (on delete cascade).

-- Syncs one user (or, with p_dry_run, says what a sync would do) and reports it, with the
-- counts of a resync. Shared by sync_user, sync_my_user and resync of listed ids.
create function user_sync.sync_one(
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
begin
  -- Every count null until apply() returns: when it raises, the report below still reads
  -- these fields (an unassigned record would raise there, outside the handler, and turn a
  -- recorded failure into an error that also rolls the record back).
  select null::integer as auth_users, null::integer as app_users, null::integer as missing,
    null::integer as stale, null::integer as inserted, null::integer as updated,
    null::integer as unchanged
  into v_counts;
  begin
    v_counts := user_sync.apply(p_user_id, p_user_id, p_dry_run);
    if v_counts.auth_users = 0 then
      -- No auth user: an app row left behind (an orphan) goes, as the cascade would have done.
      select count(*) into v_orphaned from public.users u where u.id = p_user_id;
      if not p_dry_run then
        delete from public.users u where u.id = p_user_id;
        get diagnostics v_deleted = row_count;
      end if;
      v_action := case when v_orphaned > 0 then 'deleted' else 'not_found' end;
    else
      v_action := case
        when v_counts.inserted > 0 or v_counts.missing > 0 then 'inserted'
        when v_counts.updated > 0 or v_counts.stale > 0 then 'updated'
        else 'unchanged'
      end;
    end if;
    if not p_dry_run then
      delete from user_sync.sync_failures where user_id = p_user_id;
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

-- For the service role (the edge function): sync one user by id.
create function public.sync_user(p_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_user_id is null then
    raise exception using errcode = '22023', message = 'sync_user: p_user_id is required.';
  end if;
  return user_sync.sync_one(p_user_id, 'sync_user') - 'counts';
end;
$$;

comment on function public.sync_user(uuid) is
  'Syncs public.users for one auth user and returns {user_id, action, role}. Service role only.';

-- For a signed-in user: make sure my own row exists and is current. This replaces client-side
-- upserts into public.users (and the INSERT policy they needed).
create function public.sync_my_user()
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
  return user_sync.sync_one(v_user_id, 'sync_my_user') - 'counts';
end;
$$;

comment on function public.sync_my_user() is
  'Syncs the calling user''s own public.users row and returns {user_id, action, role}.';

-- Repairs (or, with p_dry_run, reports) one keyset batch: the auth users with
-- p_first <= id <= p_last, and the app rows with p_after < id <= p_until (p_after null: no
-- lower bound), which covers the gap before the batch so orphans there are seen. The reports
-- of consecutive batches add up to the report of the whole table.
create function user_sync.resync_range(
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
begin
  if p_first is not null then
    begin
      v_counts := user_sync.apply(p_first, p_last, p_dry_run);
      v_report := jsonb_build_object(
        'auth_users', v_counts.auth_users, 'app_users', v_counts.app_users,
        'missing', v_counts.missing, 'stale', v_counts.stale,
        'inserted', v_counts.inserted, 'updated', v_counts.updated,
        'unchanged', v_counts.unchanged, 'failed', 0
      );
    exception when others then
      -- One bad row must not block the rest: redo the batch one user at a time; the users
      -- that still fail are recorded (sync_one does that) and counted.
      v_report := '{}';
      for v_id in
        select a.id from auth.users a where a.id >= p_first and a.id <= p_last order by a.id
      loop
        v_one := user_sync.sync_one(v_id, 'resync', p_dry_run);
        if v_one ->> 'action' = 'failed' then
          v_failed := v_failed || v_id;
        end if;
        v_report := user_sync.add_counts(v_report, v_one -> 'counts');
      end loop;
    end;
  else
    v_report := '{}';
  end if;

  -- Orphans: app rows whose auth user is gone. The foreign key's cascade normally prevents
  -- them; they appear when it was dropped or deferred, or rows were copied in.
  select coalesce(array_agg(u.id), '{}') into v_orphans
  from public.users u
  where (p_after is null or u.id > p_after) and u.id <= p_until
    and not exists (
      -- The range is repeated on auth.users so that both sides are index range scans.
      select 1 from auth.users a
      where a.id = u.id and (p_after is null or a.id > p_after) and a.id <= p_until
    );
  if not p_dry_run and cardinality(v_orphans) > 0 then
    delete from public.users u where u.id = any (v_orphans);
    get diagnostics v_deleted = row_count;
  end if;

  -- Drain the failures of the range: each user in it is now synced, gone, or re-recorded.
  if not p_dry_run then
    delete from user_sync.sync_failures f
    where (p_after is null or f.user_id > p_after) and f.user_id <= p_until
      and not (f.user_id = any (v_failed));
  end if;

  return user_sync.add_counts(v_report, jsonb_build_object(
    'app_users', cardinality(v_orphans),
    'orphaned', cardinality(v_orphans),
    'deleted', v_deleted
  ));
end;
$$;

-- Adds the counts of two reports.
create function user_sync.add_counts(p_a jsonb, p_b jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_object_agg(k, coalesce((p_a ->> k)::bigint, 0) + coalesce((p_b ->> k)::bigint, 0))
  from unnest(array[
    'auth_users', 'app_users', 'missing', 'stale', 'orphaned',
    'inserted', 'updated', 'deleted', 'unchanged', 'failed'
  ]) as k;
$$;

-- Repairs drift between auth.users and public.users, or reports it (p_dry_run).
--   resync_users()                                   everything, in batches, in this call
--   resync_users(p_batch_size => n, p_cursor => c)   one batch after c; returns next_cursor
--   resync_users(p_user_ids => array[...])           exactly these users
create function public.resync_users(
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
  v_internal_batch constant integer := 20000;
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

comment on function public.resync_users(boolean, uuid[], integer, uuid) is
  'Repairs drift between auth.users and public.users (or reports it with p_dry_run => true). Service role only. See docs/sql-api.md.';

-- Privileges. Functions are executable by PUBLIC by default, and Supabase's default privileges
-- grant them to anon and authenticated too: take all of that back, then grant what is meant.
revoke all on function user_sync.user_plan(uuid, uuid) from public, anon, authenticated, service_role;
revoke all on function user_sync.apply(uuid, uuid, boolean) from public, anon, authenticated, service_role;
revoke all on function user_sync.record_failure(uuid, text, text, text) from public, anon, authenticated, service_role;
revoke all on function user_sync.on_auth_user_change() from public, anon, authenticated, service_role;
revoke all on function user_sync.sync_one(uuid, text, boolean) from public, anon, authenticated, service_role;
revoke all on function user_sync.resync_range(boolean, uuid, uuid, uuid, uuid) from public, anon, authenticated, service_role;
revoke all on function user_sync.add_counts(jsonb, jsonb) from public, anon, authenticated, service_role;

revoke all on function public.sync_user(uuid) from public, anon, authenticated;
revoke all on function public.resync_users(boolean, uuid[], integer, uuid) from public, anon, authenticated;
revoke all on function public.sync_my_user() from public, anon;
grant execute on function public.sync_user(uuid) to service_role;
grant execute on function public.resync_users(boolean, uuid[], integer, uuid) to service_role;
grant execute on function public.sync_my_user() to authenticated;
