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
  deleted_at timestamptz,
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
    p_row.email_confirmed_at, p_row.is_anonymous, p_row.deleted_at, p_row.created_at
$$;

-- The role rule's parts, each written once and used by map_user and the token hooks.
-- A known role (user_sync.roles), or null.
create function user_sync.known_role(p_role text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select r.role from user_sync.roles r where r.role = p_role
$$;

-- A role a person may choose for themselves, or null.
create function user_sync.self_assignable_role(p_role text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select r.role from user_sync.roles r where r.role = p_role and r.self_assignable
$$;

create function user_sync.default_role()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select r.role from user_sync.roles r where r.is_default
$$;

-- The role a user has. A known role in app_metadata (which only the service role can write)
-- always wins. Otherwise: at creation (p_current_role is null: no row yet), a self-assignable
-- role the user asked for in user_metadata; afterwards, the current role if it is
-- self-assignable. user_metadata is never read after creation: every user can rewrite it
-- (supabase.auth.updateUser), so reading it later would let anyone promote themselves. A role
-- that is not self-assignable (admin) must stay backed by app_metadata, or falls to the
-- default. The token hooks (7/7) apply the same rule to what a token may carry.
create function user_sync.role_for(
  p_app_metadata jsonb,
  p_user_metadata jsonb,
  p_current_role text
)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    user_sync.known_role(p_app_metadata ->> 'role'),
    case
      when p_current_role is null then
        user_sync.self_assignable_role(p_user_metadata ->> 'role')
      else user_sync.self_assignable_role(p_current_role)
    end,
    user_sync.default_role()
  )
$$;

create function user_sync.map_user(a auth.users, cur public.users)
returns user_sync.user_values
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select
    a.id,
    -- Auth-owned columns follow auth.users on every sync. A soft-deleted user's email and
    -- phone are GoTrue's obfuscated stand-ins: never copied.
    case when a.deleted_at is null then a.email::text end,
    case when a.deleted_at is null then a.phone::text end,
    -- Profile columns: taken from the provider's metadata while empty, then the user's own.
    -- Google puts a name in full_name or name and a picture in picture; GitHub a login in
    -- user_name or preferred_username and a picture in avatar_url. No name stays null rather
    -- than becoming the email. Metadata is cut to the column's bound; a picture URL too long
    -- to keep whole is left out rather than cut into a broken link. Soft-deleted: cleared.
    case when a.deleted_at is null then coalesce(
      nullif(cur.full_name, ''),
      left(coalesce(
        nullif(btrim(a.raw_user_meta_data ->> 'full_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'user_name'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'username'), ''),
        nullif(btrim(a.raw_user_meta_data ->> 'preferred_username'), '')
      ), 200)
    ) end,
    case when a.deleted_at is null then coalesce(
      nullif(cur.avatar_url, ''),
      (select u.v from (values
        (1, nullif(btrim(a.raw_user_meta_data ->> 'avatar_url'), '')),
        (2, nullif(btrim(a.raw_user_meta_data ->> 'picture'), ''))
      ) as u (n, v) where char_length(u.v) <= 2048 order by u.n limit 1)
    ) end,
    -- A soft-deleted user keeps no role but the default (GoTrue empties its app_metadata too).
    case when a.deleted_at is null
      then user_sync.role_for(a.raw_app_meta_data, a.raw_user_meta_data, cur.role)
      else user_sync.default_role()
    end,
    a.email_confirmed_at,
    a.is_anonymous,
    a.deleted_at,
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
