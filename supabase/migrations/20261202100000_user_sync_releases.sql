-- supabase-user-sync 0.3.0: which releases of supabase-user-sync this database has applied.
--
-- One row per release whose migrations are in, written by those migrations only: an operator
-- (or `npx supabase-user-sync upgrade`, or a support question) can read which version a
-- database holds, whatever its migration history looks like after a project squashed or
-- renamed files. The newest row is the installed version.

create table user_sync.releases (
  version text primary key check (version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
  installed_at timestamptz not null default now()
);
comment on table user_sync.releases is
  'The supabase-user-sync releases whose migrations this database has applied, one row each; the newest is the installed version. Written by the migrations only.';

-- Internal like the rest of user_sync: no API role reads or writes it.
alter table user_sync.releases enable row level security;
revoke all on table user_sync.releases from public, anon, authenticated, service_role;

-- 0.2.0's migrations come before this file in every install, fresh or upgraded.
insert into user_sync.releases (version) values ('0.2.0'), ('0.3.0');
