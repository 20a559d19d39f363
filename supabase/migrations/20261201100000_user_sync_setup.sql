-- supabase-user-sync 1/8: the private schema and the role list.
--
-- Everything that is not an API lives in the schema user_sync: the Data API does not expose it
-- and no API role may use it. The whole install runs as the migration role (`postgres` on
-- Supabase, which is not a superuser there) and creates only objects it then owns: it never
-- drops, alters or replaces anything in `auth`, so it installs the same on a fresh hosted
-- project as on a local stack.
--
-- Every function of this project pins `search_path = pg_catalog, pg_temp`. With an empty
-- search_path PostgreSQL still looks in the session's temporary schema first for tables and
-- types, so a caller's `pg_temp.uuid` would run its code as the function's owner; naming
-- pg_temp explicitly, and last, closes that (the PostgreSQL manual, "Writing SECURITY DEFINER
-- Functions Safely"). Names are schema-qualified all the same.

create schema user_sync;
comment on schema user_sync is
  'supabase-user-sync internals: the role list, the mapping, the failures table. Not exposed through the Data API.';
revoke all on schema user_sync from public;

-- The roles an app user can have, as data: a project adds its own with an insert, no function
-- changes. self_assignable roles may be chosen at sign-up through user_metadata.role; the
-- others only through app_metadata.role, which only the service role (an admin) can write.
create table user_sync.roles (
  role text primary key check (role ~ '^[a-z][a-z0-9_]{0,62}$'),
  self_assignable boolean not null default false,
  is_default boolean not null default false,
  description text
);
comment on table user_sync.roles is
  'Known app roles. self_assignable: may be chosen at sign-up via user_metadata.role. is_default: given when nothing else applies (exactly one).';
-- At most one default role; the mapping needs exactly one, inserted below.
create unique index roles_single_default on user_sync.roles (is_default) where is_default;

insert into user_sync.roles (role, self_assignable, is_default, description) values
  ('client', true, true, 'The default role of every new user.'),
  ('artist', true, false, 'May be chosen at sign-up.'),
  ('producer', true, false, 'May be chosen at sign-up.'),
  ('admin', false, false, 'Granted only through app_metadata.role by the service role.');

alter table user_sync.roles enable row level security;
revoke all on table user_sync.roles from public, anon, authenticated, service_role;
