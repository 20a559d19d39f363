-- supabase-user-sync 5/8: the mapping, written once. The view user_sync.mapped says what
-- public.users should hold for every auth user, given the app row it has now. Every path writes
-- through it: the trigger on auth.users for the user it is given, the API functions for the
-- users they sync; the token hooks read the role a token may carry from it.
--
-- A view, not a function called per user: a view is inlined into the query that reads it, so a
-- resync plans one hash join over both tables and evaluates the mapping as plain expressions,
-- and a single user's sync plans two primary-key probes. A function cannot be inlined here:
-- every function of this project pins its search_path, and a SQL function with a SET clause
-- never is. Called once per user, a plpgsql mapping costs a resync with nothing to do 24 times
-- the seed's anti-join at 200,000 users, and its memory grows with the user count.

-- The role lists the mapping reads, kept in one row in step with user_sync.roles by a
-- statement trigger on it. One primary-key probe per mapping, where reading user_sync.roles
-- itself takes four sub-plans (known, self-assignable twice, default): about 16 µs of every
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
  v.created_at
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
    -- than becoming the email. Metadata is cut to the column's bound (the check constraints
    -- of public.users); a picture URL too long to keep whole is left out rather than cut
    -- into a broken link.
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
  'The sync mapping: for every auth user, the public.users values it should have given its current app row (role is also the role its access tokens carry), has_app_row and in_sync.';
revoke all on table user_sync.mapped from public, anon, authenticated, service_role;

-- The role an access token may carry as user_role: the view's role, which does not depend on
-- the sync having written (a revoked admin whose sync fails or is deferred still gets the
-- default) and reads user_metadata only while the user has no app row (a self-assignable role
-- chosen at sign-up, as the row will be written). A user the database cannot see yet (the
-- first token of a sign-up minted inside the sign-up's uncommitted transaction, seen from
-- another session) gets the creation rule (the view's role for a user with no app row: a
-- known app_metadata role, else a self-assignable user_metadata role, else the default)
-- applied to the token's claims, which Auth filled from that row and signed; without claims,
-- null.
create function user_sync.token_role(p_user_id uuid, p_claims jsonb)
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
  select m.role into v_role from user_sync.mapped m where m.id = p_user_id;
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

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
