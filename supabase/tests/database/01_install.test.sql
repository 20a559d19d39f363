-- supabase-user-sync acceptance suite 1/7: the install's shape. public.users with RLS on and its
-- two policies, the triggers on auth.users enabled, the table and column grants, the private
-- schemas closed to the API roles, and every security definer function with its search_path
-- pinned to `pg_catalog, pg_temp`.
--
-- Run with `supabase test db` (local stack) or `supabase test db --db-url <connection string>`
-- (a hosted project), as `postgres`. Like every file of this suite it runs in one transaction
-- that is rolled back, changes no shared object and reads no user of the project. This file
-- reads the catalogs only.

begin;
select plan(32);

-- The release this suite belongs to is the one the database records as installed.
select is(
  (select r.version from user_sync.releases r
    order by pg_catalog.string_to_array(r.version, '.')::integer[] desc limit 1),
  '0.3.0',
  'user_sync.releases records 0.3.0 as the installed release'
);

-- public.users: RLS on, the two policies of the install (a project may add its own).
select has_table('public', 'users', 'public.users exists');
select ok(
  (select c.relrowsecurity from pg_catalog.pg_class c where c.oid = 'public.users'::regclass),
  'row level security is enabled on public.users'
);
select policy_cmd_is('public', 'users', 'users_select_own', 'select',
  'policy users_select_own is for SELECT');
select policy_roles_are('public', 'users', 'users_select_own', array['authenticated'],
  'policy users_select_own applies to authenticated');
select policy_cmd_is('public', 'users', 'users_update_own_profile', 'update',
  'policy users_update_own_profile is for UPDATE');
select policy_roles_are('public', 'users', 'users_update_own_profile', array['authenticated'],
  'policy users_update_own_profile applies to authenticated');

-- The triggers on auth.users: present, calling the sync, and enabled (tgenabled 'O': fires in
-- ordinary sessions; 'D' is disabled, 'R'/'A' fire only under replication roles).
select trigger_is('auth', 'users', 'user_sync_after_insert', 'user_sync', 'on_auth_user_change',
  'auth.users has user_sync_after_insert calling user_sync.on_auth_user_change()');
select trigger_is('auth', 'users', 'user_sync_after_update', 'user_sync', 'on_auth_user_change',
  'auth.users has user_sync_after_update calling user_sync.on_auth_user_change()');
select is(
  (select tr.tgenabled::text from pg_catalog.pg_trigger tr
   where tr.tgrelid = 'auth.users'::regclass and tr.tgname = t.name),
  'O',
  pg_catalog.format('the trigger %s is enabled', t.name))
from (values ('user_sync_after_insert'), ('user_sync_after_update')) as t (name);
select fk_ok('public', 'users', 'id', 'auth', 'users', 'id',
  'public.users.id references auth.users.id');

-- Table grants: anon nothing, authenticated SELECT (its UPDATE is per column, below), the
-- service role the four DML privileges; and authenticated nothing on the audit trail.
select table_privs_are('public', t.name, t.grantee, t.privileges, t.description)
from (values
  ('users', 'anon', array[]::text[], 'anon has no privilege on public.users'),
  ('users', 'authenticated', array['SELECT'],
    'authenticated has only SELECT on public.users as a whole'),
  ('users', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    'service_role has SELECT, INSERT, UPDATE, DELETE on public.users'),
  ('user_sync_audit', 'authenticated', array[]::text[],
    'authenticated has no privilege on the audit trail')
) as t (name, grantee, privileges, description);

-- Column grants: of the sync's columns, authenticated may update full_name and avatar_url and
-- nothing else, and may insert none.
select is(
  array(
    select c from pg_catalog.unnest(array[
      'id', 'email', 'phone', 'full_name', 'avatar_url', 'role', 'email_confirmed_at',
      'is_anonymous', 'deleted_at', 'created_at', 'updated_at'
    ]) as c
    where pg_catalog.has_column_privilege('authenticated', 'public.users', c, t.privilege)
  ),
  t.columns,
  t.description)
from (values
  ('UPDATE', array['full_name', 'avatar_url'],
    'authenticated may update only full_name and avatar_url of public.users'),
  ('INSERT', array[]::text[], 'authenticated may insert no column of public.users')
) as t (privilege, columns, description);
select column_privs_are('public', 'users', 'role', 'authenticated', array['SELECT'],
  'authenticated may read the role column and not write it');
select column_privs_are('public', 'users', 'role', 'anon', array[]::text[],
  'anon has no privilege on the role column');

-- The private schemas: user_sync for nobody of the API; user_sync_api for authenticated only.
select schema_privs_are(t.name, t.grantee, t.privileges, t.description)
from (values
  ('user_sync', 'anon', array[]::text[], 'anon has no privilege on schema user_sync'),
  ('user_sync', 'authenticated', array[]::text[],
    'authenticated has no privilege on schema user_sync'),
  ('user_sync', 'service_role', array[]::text[],
    'service_role has no privilege on schema user_sync'),
  ('user_sync_api', 'anon', array[]::text[], 'anon has no privilege on schema user_sync_api'),
  ('user_sync_api', 'authenticated', array['USAGE'],
    'authenticated may only use schema user_sync_api')
) as t (name, grantee, privileges, description);

-- Security definer functions: every one in user_sync and user_sync_api, and the four entry
-- points in public, with search_path pinned to `pg_catalog, pg_temp` (an empty path still lets
-- a caller's temporary schema shadow names). public.sync_my_user is an invoker wrapper, so
-- nothing privileged sits in the exposed schema but the service-role and Auth entry points.
select is_definer('user_sync', 'on_auth_user_change', array[]::name[],
  'the trigger function is security definer (GoTrue''s role may not write public.users)');
select isnt_definer('public', 'sync_my_user', array[]::name[],
  'public.sync_my_user() is security invoker');

-- The install's functions, for the checks below: all of user_sync and user_sync_api, and its
-- five entry points in public (other functions in public are the project's own, and not this
-- suite's business). A temporary view: gone at the rollback.
create temporary view install_function as
select p.oid, p.prosecdef as definer, coalesce(p.proconfig, '{}') as config,
  p.pronamespace <> 'public'::regnamespace as private,
  pg_catalog.format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
    pg_catalog.oidvectortypes(p.proargtypes)) as signature
from pg_catalog.pg_proc p
where p.pronamespace in ('user_sync'::regnamespace, 'user_sync_api'::regnamespace)
  or p.oid = any (array[
    'public.sync_user(uuid, text, jsonb)'::regprocedure,
    'public.resync_users(boolean, uuid[], integer, uuid)'::regprocedure,
    'public.sync_my_user()'::regprocedure,
    'public.hook_custom_access_token(jsonb)'::regprocedure,
    'public.hook_before_user_created(jsonb)'::regprocedure
  ]);
select is(
  array(select f.signature from install_function f where f.definer and not f.private order by 1),
  array[
    'public.hook_before_user_created(jsonb)', 'public.hook_custom_access_token(jsonb)',
    'public.resync_users(boolean, uuid[], integer, uuid)', 'public.sync_user(uuid, text, jsonb)'
  ],
  'the four service-role and Auth entry points in public are security definer'
);
-- Each function below is one that breaks the rule; none may.
select is(
  array(
    select f.signature from install_function f
    where f.definer
      and not (f.config @> array['search_path=pg_catalog, pg_temp']
        and (select count(*) from pg_catalog.unnest(f.config) s
             where s like 'search_path=%') = 1)
    order by 1),
  array[]::text[],
  'every security definer function of the install has search_path = pg_catalog, pg_temp'
);
select is(
  array(
    select f.signature from install_function f
    where f.private and not f.config @> array['search_path=pg_catalog, pg_temp']
    order by 1),
  array[]::text[],
  'every function in user_sync and user_sync_api pins search_path = pg_catalog, pg_temp'
);
select ok(
  (select pg_catalog.bool_or(s ~ '^lock_timeout=[1-9]')
   from pg_catalog.pg_proc p, pg_catalog.unnest(p.proconfig) s
   where p.oid = 'user_sync.on_auth_user_change()'::regprocedure),
  'the trigger function never waits for a lock without limit (a lock_timeout of its own)'
);

-- Supabase's default privileges give every new function in public to the API roles, so the
-- install revokes them one by one (02 tests each). Nothing of ours may stay executable by
-- PUBLIC.
select is(
  array(
    select f.signature from install_function f
    where pg_catalog.has_function_privilege('public', f.oid, 'EXECUTE')
    order by 1),
  array[]::text[],
  'no function of the install is executable by PUBLIC'
);

select * from finish();
rollback;
