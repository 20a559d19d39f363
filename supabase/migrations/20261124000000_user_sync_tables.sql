-- supabase-user-sync, part 1: the tables.
--
-- public.users is the app's view of a person. Supabase Auth owns auth.users; the functions in
-- the next migration keep the two in step. Internals live in the private schema user_sync,
-- which the Data API does not expose and API roles cannot use.

create schema if not exists user_sync;
comment on schema user_sync is
  'supabase-user-sync internals: the role list, the sync mapping, the failures table. Not exposed through the Data API.';
revoke all on schema user_sync from public;

-- The roles an app user can have, as data: a project adds its own with an insert, no function
-- changes. self_assignable roles may be chosen at sign-up through user_metadata.role; the others
-- only through app_metadata.role, which only the service role (an admin) can write.
create table user_sync.roles (
  role text primary key check (role ~ '^[a-z][a-z0-9_]{0,62}$'),
  self_assignable boolean not null default false,
  is_default boolean not null default false,
  description text
);
comment on table user_sync.roles is
  'Known app roles. self_assignable: may be chosen at sign-up via user_metadata.role. is_default: given when nothing else applies (exactly one).';
-- At most one default role (the sync needs exactly one; the migration below inserts it).
create unique index roles_single_default on user_sync.roles (is_default) where is_default;

insert into user_sync.roles (role, self_assignable, is_default, description) values
  ('client', true, true, 'The default role of every new user.'),
  ('artist', true, false, 'May be chosen at sign-up.'),
  ('producer', true, false, 'May be chosen at sign-up.'),
  ('admin', false, false, 'Granted only through app_metadata.role by the service role.');

create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  phone text,
  full_name text,
  avatar_url text,
  -- No default: the sync always decides the role; a direct insert must say it.
  role text not null references user_sync.roles (role) on update cascade,
  email_confirmed_at timestamptz,
  is_anonymous boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.users is
  'One row per auth.users row, kept in step by supabase-user-sync. id, email, phone, email_confirmed_at, is_anonymous follow auth.users; full_name and avatar_url belong to the user after creation; role changes only through app_metadata.';

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

-- Row level security on everything, deny by default.
alter table public.users enable row level security;
alter table user_sync.roles enable row level security;
alter table user_sync.sync_failures enable row level security;

-- Grants are explicit: new tables are no longer exposed to the Data API by default, and older
-- projects grant everything to the API roles by default, so start from nothing either way.
revoke all on table public.users from public, anon, authenticated, service_role;
revoke all on table user_sync.roles from public, anon, authenticated, service_role;
revoke all on table user_sync.sync_failures from public, anon, authenticated, service_role;

-- A signed-in user reads their own row and edits only the profile columns of it. Column grants
-- stop the role (and every auth-owned column) from being written, whatever a policy says.
grant select on table public.users to authenticated;
grant update (full_name, avatar_url) on table public.users to authenticated;

create policy users_select_own on public.users
  for select to authenticated
  using (id = (select auth.uid()));

create policy users_update_own_profile on public.users
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- The service role (server code holding the secret key) may manage rows; it bypasses RLS.
grant select, insert, update, delete on table public.users to service_role;
