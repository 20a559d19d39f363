-- supabase-user-sync 2/8: public.users, the app's view of a person, and who may touch it.

create table public.users (
  -- The foreign key's cascade removes the app row with the auth user; while it is valid and
  -- immediate, no app row can outlive its auth user, and the sync never looks for orphans.
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  phone text,
  full_name text,
  avatar_url text,
  -- No default: the sync always decides the role; a direct insert must say it.
  role text not null references user_sync.roles (role) on update cascade,
  email_confirmed_at timestamptz,
  is_anonymous boolean not null default false,
  -- Set when the auth user is soft-deleted (GoTrue's deleteUser(id, true)): the row stays, so
  -- what the app keeps about the person can still point at it, but it holds no contact data,
  -- no profile and only the default role.
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A user writes their own profile: bounded, so that no one can grow every audited sync of
  -- their row (or make it fail) with megabytes of text. The names say the limit.
  constraint full_name_at_most_200_characters check (char_length(full_name) <= 200),
  constraint avatar_url_at_most_2048_characters check (char_length(avatar_url) <= 2048)
);
comment on table public.users is
  'One row per auth.users row, kept in step by supabase-user-sync. id, email, phone, email_confirmed_at, is_anonymous, deleted_at follow auth.users; full_name and avatar_url belong to the user after creation; role changes only through app_metadata.';

-- The foreign key to user_sync.roles is checked on every write and on role deletes.
create index users_role on public.users (role);

alter table public.users enable row level security;

-- Grants are explicit: new tables are no longer exposed to the Data API by default, and older
-- projects grant everything to the API roles by default, so start from nothing either way.
revoke all on table public.users from public, anon, authenticated, service_role;

-- A signed-in user reads their own row and edits only the profile columns of it. Column grants
-- stop the role (and every auth-owned column) from being written, whatever a policy says.
grant select on table public.users to authenticated;
grant update (full_name, avatar_url) on table public.users to authenticated;

-- `(select auth.uid())`, not `auth.uid()`: evaluated once per statement, not once per row.
create policy users_select_own on public.users
  for select to authenticated
  using (id = (select auth.uid()));

create policy users_update_own_profile on public.users
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- The service role (server code holding the secret key) may manage rows; it bypasses RLS.
grant select, insert, update, delete on table public.users to service_role;
