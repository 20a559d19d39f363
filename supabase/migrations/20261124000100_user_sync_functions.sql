-- supabase-user-sync, part 2: the one sync mapping and everything that calls it.
--
-- user_sync.user_plan is the mapping: for every auth user, the public.users row it should have,
-- given the row it has now. Every path (the trigger, the hooks through sync_user, sync_my_user,
-- resync) writes through user_sync.apply(), the only statement that writes public.users rows.
--
-- All functions are security definer, owned by the migration role, with an empty search_path
-- and schema-qualified names: GoTrue's role (supabase_auth_admin) resolves unqualified names in
-- schema auth and has no rights on public, so anything less fails sign-up on Supabase.

create view user_sync.user_plan as
select
  d.*,
  -- in_sync: the app row exists and already holds every value the mapping wants. Rows that are
  -- in sync are never written, so a resync with nothing to do writes nothing.
  d.app_row_exists and (
    d.current_email, d.current_phone, d.current_full_name, d.current_avatar_url, d.current_role,
    d.current_email_confirmed_at, d.current_is_anonymous, d.current_created_at
  ) is not distinct from (
    d.email, d.phone, d.full_name, d.avatar_url, d.role,
    d.email_confirmed_at, d.is_anonymous, d.created_at
  ) as in_sync
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
    -- Role. At creation: a known role in app_metadata (written only by the service role), else
    -- a self-assignable role the user asked for in user_metadata, else the default role.
    -- Afterwards only app_metadata can change it: user_metadata is writable by the user
    -- (supabase.auth.updateUser), so reading it later would let anyone promote themselves.
    case
      when u.id is null then coalesce(granted.role, chosen.role, fallback.role)
      else coalesce(granted.role, u.role)
    end as role,
    u.email as current_email,
    u.phone as current_phone,
    u.full_name as current_full_name,
    u.avatar_url as current_avatar_url,
    u.role as current_role,
    u.email_confirmed_at as current_email_confirmed_at,
    u.is_anonymous as current_is_anonymous,
    u.created_at as current_created_at
  from auth.users a
  -- A lateral probe by primary key, fenced by "offset 0" so the planner cannot turn it into a
  -- join that scans all of public.users (with stale or empty-table statistics it would, once
  -- per batch, and a resync would grow quadratic).
  left join lateral (
    select * from public.users pu where pu.id = a.id offset 0
  ) u on true
  left join user_sync.roles granted on granted.role = a.raw_app_meta_data ->> 'role'
  left join user_sync.roles chosen
    on chosen.role = a.raw_user_meta_data ->> 'role' and chosen.self_assignable
  left join user_sync.roles fallback on fallback.is_default
) d;

comment on view user_sync.user_plan is
  'The sync mapping: for each auth user, the public.users values it should have (given its current row) and whether it already has them.';

-- Writes the mapping for the given auth user ids, and counts what it found and did.
-- p_dry_run computes the same counts with the same statement and writes nothing.
create function user_sync.apply(
  p_ids uuid[],
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
-- One plan shape whatever the statistics say: index probes by id, joined by nested loops. The
-- cost is linear in the number of ids, also when public.users is empty and analysed, where the
-- planner would otherwise pick scans of the whole table for every batch (quadratic resyncs).
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set enable_material = off
as $$
begin
  with plan as materialized (
    select p.*
    from user_sync.user_plan p
    where p.id = any (p_ids)
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
    perform user_sync.apply(array[new.id]);
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
-- updates last_sign_in_at (and GoTrue's role/updated_at writes) and must not cost a sync.
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

-- Syncs one user and says what happened. Shared by sync_user (service role) and sync_my_user.
create function user_sync.sync_one(p_user_id uuid, p_source text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_result record;
  v_deleted integer := 0;
  v_action text;
  v_sqlstate text;
begin
  begin
    v_result := user_sync.apply(array[p_user_id]);
    if v_result.auth_users = 0 then
      -- No auth user: an app row left behind (orphan) goes, like the cascade would have done.
      delete from public.users where id = p_user_id;
      get diagnostics v_deleted = row_count;
      v_action := case when v_deleted > 0 then 'deleted' else 'not_found' end;
    else
      v_action := case
        when v_result.inserted > 0 then 'inserted'
        when v_result.updated > 0 then 'updated'
        else 'unchanged'
      end;
    end if;
    delete from user_sync.sync_failures where user_id = p_user_id;
  exception when others then
    v_sqlstate := sqlstate;
    perform user_sync.record_failure(p_user_id, p_source, v_sqlstate, sqlerrm);
    v_action := 'failed';
  end;
  return jsonb_strip_nulls(jsonb_build_object(
    'user_id', p_user_id,
    'action', v_action,
    'sqlstate', v_sqlstate
  )) || jsonb_build_object(
    'role', (select u.role from public.users u where u.id = p_user_id)
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
  return user_sync.sync_one(p_user_id, 'sync_user');
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
  return user_sync.sync_one(v_user_id, 'sync_my_user');
end;
$$;

comment on function public.sync_my_user() is
  'Syncs the calling user''s own public.users row and returns {user_id, action, role}.';

-- Repairs (or, with p_dry_run, reports) drift for one keyset range of user ids. Counts cover
-- auth users with lo < id <= hi (or the listed ids) and app rows in the same range, so the
-- reports of consecutive ranges add up to the report of the whole table.
create function user_sync.resync_range(
  p_dry_run boolean,
  p_ids uuid[],
  p_lo uuid,
  p_hi uuid,
  p_listed boolean
)
returns jsonb
language plpgsql
security definer
set search_path = ''
-- Index probes only, as in user_sync.apply: a batch costs what its range holds.
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set enable_material = off
as $$
declare
  v_counts record;
  v_one record;
  v_failed uuid[] := '{}';
  v_id uuid;
  v_orphans uuid[];
  v_app_orphans integer;
  v_deleted integer := 0;
  v_auth integer := 0;
  v_app integer := 0;
  v_missing integer := 0;
  v_stale integer := 0;
  v_inserted integer := 0;
  v_updated integer := 0;
  v_unchanged integer := 0;
begin
  begin
    v_counts := user_sync.apply(p_ids, p_dry_run);
    v_auth := v_counts.auth_users; v_app := v_counts.app_users;
    v_missing := v_counts.missing; v_stale := v_counts.stale;
    v_inserted := v_counts.inserted; v_updated := v_counts.updated;
    v_unchanged := v_counts.unchanged;
  exception when others then
    -- One bad row must not block the rest: retry the range one user at a time and record
    -- the users that still fail.
    foreach v_id in array p_ids loop
      begin
        v_one := user_sync.apply(array[v_id], p_dry_run);
        v_auth := v_auth + v_one.auth_users; v_app := v_app + v_one.app_users;
        v_missing := v_missing + v_one.missing; v_stale := v_stale + v_one.stale;
        v_inserted := v_inserted + v_one.inserted; v_updated := v_updated + v_one.updated;
        v_unchanged := v_unchanged + v_one.unchanged;
      exception when others then
        v_auth := v_auth + 1;
        v_failed := v_failed || v_id;
        if not p_dry_run then
          perform user_sync.record_failure(v_id, 'resync', sqlstate, sqlerrm);
        end if;
      end;
    end loop;
  end;

  -- Orphans: app rows in the range whose auth user is gone (possible only if the foreign key
  -- was dropped or deferred, or rows were copied in; the cascade handles ordinary deletes).
  if p_listed then
    select coalesce(array_agg(u.id), '{}') into v_orphans
    from public.users u
    where u.id = any (p_ids)
      and not exists (select 1 from auth.users a where a.id = u.id);
  else
    select coalesce(array_agg(u.id), '{}') into v_orphans
    from public.users u
    where u.id > p_lo and u.id <= p_hi
      and not exists (select 1 from auth.users a where a.id = u.id);
  end if;
  v_app_orphans := cardinality(v_orphans);
  if not p_dry_run and v_app_orphans > 0 then
    delete from public.users u where u.id = any (v_orphans);
    get diagnostics v_deleted = row_count;
  end if;

  -- Drain the failures of this range: every user in it is now synced, gone, or re-recorded.
  if not p_dry_run then
    if p_listed then
      delete from user_sync.sync_failures f
      where f.user_id = any (p_ids) and not (f.user_id = any (v_failed));
    else
      delete from user_sync.sync_failures f
      where f.user_id > p_lo and f.user_id <= p_hi and not (f.user_id = any (v_failed));
    end if;
  end if;

  return jsonb_build_object(
    'auth_users', v_auth,
    'app_users', v_app + v_app_orphans,
    'missing', v_missing,
    'stale', v_stale,
    'orphaned', v_app_orphans,
    'inserted', v_inserted,
    'updated', v_updated,
    'deleted', v_deleted,
    'unchanged', v_unchanged,
    'failed', cardinality(v_failed)
  );
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

-- The lowest and highest uuid, the bounds of a keyset walk over every id.
create function user_sync.uuid_floor() returns uuid language sql immutable
  as $$ select '00000000-0000-0000-0000-000000000000'::uuid $$;
create function user_sync.uuid_ceiling() returns uuid language sql immutable
  as $$ select 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid $$;

-- Repairs drift between auth.users and public.users, or reports it (p_dry_run).
--   resync_users()                              everything, in batches, in this call
--   resync_users(p_batch_size => n, p_cursor => c)  one batch after c; returns next_cursor
--   resync_users(p_user_ids => array[...])      exactly these users
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
  v_lo uuid;
  v_hi uuid;
  v_ids uuid[];
  v_report jsonb := '{}';
  v_done boolean := false;
  v_next uuid;
begin
  if p_user_ids is not null and (p_batch_size is not null or p_cursor is not null) then
    raise exception using errcode = '22023',
      message = 'resync_users: p_user_ids cannot be combined with p_batch_size or p_cursor.';
  end if;
  if p_batch_size is not null and (p_batch_size < 1 or p_batch_size > 50000) then
    raise exception using errcode = '22023',
      message = format('resync_users: p_batch_size must be between 1 and 50000, got %s.', p_batch_size);
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
    select coalesce(array_agg(distinct i), '{}') into v_ids
    from unnest(p_user_ids) as i where i is not null;
    v_report := user_sync.resync_range(v_dry_run, v_ids, null, null, true);
    v_done := true;
  else
    v_scope := case when p_batch_size is null then 'all' else 'batch' end;
    v_limit := coalesce(p_batch_size, v_internal_batch);
    v_lo := p_cursor;
    loop
      -- The next keyset batch of auth user ids, in id order.
      if v_lo is null then
        select coalesce(array_agg(a.id order by a.id), '{}') into v_ids
        from (select id from auth.users order by id limit v_limit) a;
      else
        select coalesce(array_agg(a.id order by a.id), '{}') into v_ids
        from (select id from auth.users where id > v_lo order by id limit v_limit) a;
      end if;
      -- A short batch is the last one: its range reaches the highest possible id, so that
      -- orphans after the last auth user are seen too.
      v_done := cardinality(v_ids) < v_limit;
      v_hi := case when v_done then user_sync.uuid_ceiling() else v_ids[cardinality(v_ids)] end;
      v_report := user_sync.add_counts(
        v_report,
        user_sync.resync_range(
          v_dry_run, v_ids, coalesce(v_lo, user_sync.uuid_floor()), v_hi, false
        )
      );
      -- The lowest uuid is excluded by "id > lo"; a nil-uuid user is synced by its batch above
      -- through p_ids, only its orphan check would miss, which cannot matter (it has a row).
      exit when v_done or p_batch_size is not null;
      v_lo := v_hi;
    end loop;
    v_next := case when v_done then null else v_hi end;
  end if;

  return v_report || jsonb_build_object(
    'dry_run', v_dry_run,
    'scope', v_scope,
    'failures_pending', (select count(*) from user_sync.sync_failures),
    'next_cursor', v_next,
    'done', v_done
  );
end;
$$;

comment on function public.resync_users(boolean, uuid[], integer, uuid) is
  'Repairs drift between auth.users and public.users (or reports it with p_dry_run => true). Service role only. See docs/sql-api.md.';

-- Privileges. Functions are executable by PUBLIC by default, and Supabase's default privileges
-- grant them to anon and authenticated too: take all of that back, then grant what is meant.
revoke all on function user_sync.apply(uuid[], boolean) from public, anon, authenticated, service_role;
revoke all on function user_sync.record_failure(uuid, text, text, text) from public, anon, authenticated, service_role;
revoke all on function user_sync.on_auth_user_change() from public, anon, authenticated, service_role;
revoke all on function user_sync.sync_one(uuid, text) from public, anon, authenticated, service_role;
revoke all on function user_sync.resync_range(boolean, uuid[], uuid, uuid, boolean) from public, anon, authenticated, service_role;
revoke all on function user_sync.add_counts(jsonb, jsonb) from public, anon, authenticated, service_role;
revoke all on table user_sync.user_plan from public, anon, authenticated, service_role;

revoke all on function public.sync_user(uuid) from public, anon, authenticated;
revoke all on function public.resync_users(boolean, uuid[], integer, uuid) from public, anon, authenticated;
revoke all on function public.sync_my_user() from public, anon;
grant execute on function public.sync_user(uuid) to service_role;
grant execute on function public.resync_users(boolean, uuid[], integer, uuid) to service_role;
grant execute on function public.sync_my_user() to authenticated;
