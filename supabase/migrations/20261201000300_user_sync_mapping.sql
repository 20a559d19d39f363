-- supabase-user-sync 4/7: the mapping, written once, and the failures table.
--
-- user_sync.map_user(auth row, app row) says what public.users should hold for an auth user,
-- given the app row it has now (null: none yet). Every path writes through it: the trigger
-- (5/7) with the row it is given, the API functions (6/7) with rows they read.

-- The columns the sync owns, in public.users order. Projects may add columns of their own to
-- public.users; the sync neither reads nor writes those.
create type user_sync.user_values as (
  id uuid,
  email text,
  phone text,
  full_name text,
  avatar_url text,
  role text,
  email_confirmed_at timestamptz,
  is_anonymous boolean,
  created_at timestamptz
);

-- The sync-owned columns of an app row (all null for a missing row).
create function user_sync.values_of(p_row public.users)
returns user_sync.user_values
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select p_row.id, p_row.email, p_row.phone, p_row.full_name, p_row.avatar_url, p_row.role,
    p_row.email_confirmed_at, p_row.is_anonymous, p_row.created_at
$$;

create function user_sync.map_user(a auth.users, cur public.users)
returns user_sync.user_values
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select
    a.id,
    -- Auth-owned columns follow auth.users on every sync.
    a.email::text,
    a.phone::text,
    -- Profile columns: taken from the provider's metadata while empty, then the user's own.
    -- Google puts a name in full_name or name and a picture in picture; GitHub a login in
    -- user_name or preferred_username and a picture in avatar_url. No name stays null rather
    -- than becoming the email.
    coalesce(
      nullif(cur.full_name, ''),
      nullif(btrim(a.raw_user_meta_data ->> 'full_name'), ''),
      nullif(btrim(a.raw_user_meta_data ->> 'name'), ''),
      nullif(btrim(a.raw_user_meta_data ->> 'user_name'), ''),
      nullif(btrim(a.raw_user_meta_data ->> 'username'), ''),
      nullif(btrim(a.raw_user_meta_data ->> 'preferred_username'), '')
    ),
    coalesce(
      nullif(cur.avatar_url, ''),
      nullif(btrim(a.raw_user_meta_data ->> 'avatar_url'), ''),
      nullif(btrim(a.raw_user_meta_data ->> 'picture'), '')
    ),
    -- The role. A known role in app_metadata (which only the service role can write) always
    -- wins. Otherwise, at creation, a self-assignable role the user asked for in
    -- user_metadata; afterwards the current role if it is self-assignable. user_metadata is
    -- never read after creation: every user can rewrite it (supabase.auth.updateUser), so
    -- reading it later would let anyone promote themselves. A role that is not
    -- self-assignable (admin) must stay backed by app_metadata, or falls to the default.
    coalesce(
      (select r.role from user_sync.roles r where r.role = a.raw_app_meta_data ->> 'role'),
      case
        when cur.id is null then (
          select r.role from user_sync.roles r
          where r.role = a.raw_user_meta_data ->> 'role' and r.self_assignable)
        else (
          select r.role from user_sync.roles r
          where r.role = cur.role and r.self_assignable)
      end,
      (select r.role from user_sync.roles r where r.is_default)
    ),
    a.email_confirmed_at,
    a.is_anonymous,
    coalesce(a.created_at, cur.created_at, now())
$$;

comment on function user_sync.map_user(auth.users, public.users) is
  'The sync mapping: the public.users values an auth user should have, given its current app row (null when it has none).';

-- Where a sync that could not be written is remembered, so that nothing is lost: the trigger on
-- auth.users never raises, it records here instead, and resync drains this table.
create table user_sync.sync_failures (
  user_id uuid primary key,
  source text not null,
  sqlstate text not null,
  message text not null,
  first_failed_at timestamptz not null default now(),
  last_failed_at timestamptz not null default now(),
  attempts integer not null default 1
);
comment on table user_sync.sync_failures is
  'Syncs that failed (dead letters). One row per user; attempts counts the failures. public.resync_users() repairs and removes them.';
alter table user_sync.sync_failures enable row level security;
revoke all on table user_sync.sync_failures from public, anon, authenticated, service_role;

-- Remembers a sync that could not be written (and audits it while the trail is on). Never
-- raises: it is called from the trigger, where raising would block sign-up.
create function user_sync.record_failure(
  p_user_id uuid,
  p_source text,
  p_sqlstate text,
  p_message text
)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
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
  if user_sync.audit_enabled() then
    insert into public.user_sync_audit (user_id, source, action, sqlstate)
    values (p_user_id, p_source, 'failed', p_sqlstate);
  end if;
exception when others then
  raise warning 'user_sync: could not record a sync failure for user %: % (%)',
    p_user_id, sqlerrm, sqlstate;
end;
$$;

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
