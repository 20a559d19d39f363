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
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  return row(p_row.id, p_row.email, p_row.phone, p_row.full_name, p_row.avatar_url, p_row.role,
    p_row.email_confirmed_at, p_row.is_anonymous, p_row.deleted_at,
    p_row.created_at)::user_sync.user_values;
end;
$$;

-- map_user is plpgsql, not SQL: every function here pins its search_path, and a SQL function
-- with a SET clause is never inlined, so each call would plan its body again. plpgsql keeps
-- its plans for the session: a sign-up pays a few microseconds.
create function user_sync.map_user(a auth.users, cur public.users)
returns user_sync.user_values
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v user_sync.user_values;
  v_meta jsonb := coalesce(a.raw_user_meta_data, '{}');
  v_granted text;
  v_chosen text;
  v_picture text;
begin
  v.id := a.id;
  -- Auth-owned columns follow auth.users on every sync.
  v.email_confirmed_at := a.email_confirmed_at;
  v.is_anonymous := a.is_anonymous;
  v.deleted_at := a.deleted_at;
  v.created_at := coalesce(a.created_at, cur.created_at, now());

  -- The role. A known role in app_metadata (which only the service role can write) always
  -- wins. Otherwise: at creation (no row yet), a self-assignable role the user asked for in
  -- user_metadata; afterwards, the current role if it is self-assignable. user_metadata is
  -- never read after creation: every user can rewrite it (supabase.auth.updateUser), so
  -- reading it later would let anyone promote themselves. A role that is not self-assignable
  -- (admin) must stay backed by app_metadata, or falls to the default. A soft-deleted user
  -- keeps only the default. The token hooks apply this same rule (user_sync.token_role, 6/7).
  if a.deleted_at is null then
    v_granted := a.raw_app_meta_data ->> 'role';
    v_chosen := case when cur.id is null then v_meta ->> 'role' else cur.role end;
  end if;
  v.role := (
    select coalesce(
      max(r.role) filter (where r.role = v_granted),
      max(r.role) filter (where r.role = v_chosen and r.self_assignable),
      max(r.role) filter (where r.is_default)
    )
    from user_sync.roles r
  );

  if a.deleted_at is not null then
    -- Soft-deleted: GoTrue has obfuscated the email and phone and emptied the metadata. None
    -- of that is copied, and the profile is cleared.
    return v;
  end if;
  v.email := a.email;
  v.phone := a.phone;
  -- Profile columns: taken from the provider's metadata while empty, then the user's own.
  -- Google puts a name in full_name or name and a picture in picture; GitHub a login in
  -- user_name or preferred_username and a picture in avatar_url. No name stays null rather
  -- than becoming the email. Metadata is cut to the column's bound (2/7); a picture URL too
  -- long to keep whole is left out rather than cut into a broken link.
  v.full_name := coalesce(
    nullif(cur.full_name, ''),
    left(coalesce(
      nullif(btrim(v_meta ->> 'full_name'), ''),
      nullif(btrim(v_meta ->> 'name'), ''),
      nullif(btrim(v_meta ->> 'user_name'), ''),
      nullif(btrim(v_meta ->> 'username'), ''),
      nullif(btrim(v_meta ->> 'preferred_username'), '')
    ), 200)
  );
  v.avatar_url := nullif(cur.avatar_url, '');
  if v.avatar_url is null then
    foreach v_picture in array array[v_meta ->> 'avatar_url', v_meta ->> 'picture'] loop
      v_picture := nullif(btrim(v_picture), '');
      if char_length(v_picture) <= 2048 then
        v.avatar_url := v_picture;
        exit;
      end if;
    end loop;
  end if;
  return v;
end;
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
