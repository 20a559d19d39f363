-- supabase-user-sync acceptance suite 2/7: exactly who may execute each API function, from the
-- catalog and by calling it as PostgREST does (`set local role`, `request.jwt.claims`).
--
--   public.sync_user(uuid, text, jsonb)                      service_role
--   public.resync_users(boolean, uuid[], integer, uuid)      service_role
--   public.sync_my_user()                                    authenticated
--   user_sync_api.sync_my_user()                             authenticated
--   public.hook_custom_access_token(jsonb)                   supabase_auth_admin
--   public.hook_before_user_created(jsonb)                   supabase_auth_admin
--
-- One transaction, rolled back. Every call names only this file's own user (a fresh random id),
-- with p_dry_run where there is one, so even a call that should have been refused and was not
-- touches nothing else.

begin;
select plan(43);

select gen_random_uuid() as me, gen_random_uuid() as nobody \gset
select
  pg_catalog.json_build_object('sub', :'me', 'role', 'authenticated')::text as me_claims,
  pg_catalog.json_build_object('role', 'authenticated')::text as no_sub_claims,
  pg_catalog.json_build_object('role', 'anon')::text as anon_claims,
  pg_catalog.json_build_object('role', 'service_role')::text as service_claims,
  pg_catalog.json_build_object(
    'user_id', :'me',
    'claims', pg_catalog.json_build_object('sub', :'me', 'role', 'authenticated'),
    'authentication_method', 'password'
  )::text as token_event,
  pg_catalog.json_build_object('user', pg_catalog.json_build_object('id', :'nobody'))::text
    as signup_event
\gset

-- This file's user, as GoTrue's email sign-up writes it (first two statements).
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'me', 'authenticated', '', :'me' || '@example.com',
  '', now(), null, '', null, '', null, '', '', null, null,
  '{"provider": "email", "providers": ["email"]}', '{}', null, now(), now(), null,
  null, '', '', null, '', 0, null, '', null, false, null, false
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'me';

-- From the catalog: EXECUTE for exactly the one role each function is for.
select function_privs_are('public', 'sync_user', array['uuid', 'text', 'jsonb'], 'anon',
  array[]::text[], 'anon may not execute public.sync_user');
select function_privs_are('public', 'sync_user', array['uuid', 'text', 'jsonb'], 'authenticated',
  array[]::text[], 'authenticated may not execute public.sync_user');
select function_privs_are('public', 'sync_user', array['uuid', 'text', 'jsonb'], 'service_role',
  array['EXECUTE'], 'service_role may execute public.sync_user');
select function_privs_are('public', 'sync_user', array['uuid', 'text', 'jsonb'],
  'supabase_auth_admin', array[]::text[], 'supabase_auth_admin may not execute public.sync_user');

select function_privs_are('public', 'resync_users', array['boolean', 'uuid[]', 'integer', 'uuid'],
  'anon', array[]::text[], 'anon may not execute public.resync_users');
select function_privs_are('public', 'resync_users', array['boolean', 'uuid[]', 'integer', 'uuid'],
  'authenticated', array[]::text[], 'authenticated may not execute public.resync_users');
select function_privs_are('public', 'resync_users', array['boolean', 'uuid[]', 'integer', 'uuid'],
  'service_role', array['EXECUTE'], 'service_role may execute public.resync_users');
select function_privs_are('public', 'resync_users', array['boolean', 'uuid[]', 'integer', 'uuid'],
  'supabase_auth_admin', array[]::text[],
  'supabase_auth_admin may not execute public.resync_users');

select function_privs_are('public', 'sync_my_user', array[]::text[], 'anon', array[]::text[],
  'anon may not execute public.sync_my_user');
select function_privs_are('public', 'sync_my_user', array[]::text[], 'authenticated',
  array['EXECUTE'], 'authenticated may execute public.sync_my_user');
select function_privs_are('public', 'sync_my_user', array[]::text[], 'service_role',
  array[]::text[], 'service_role may not execute public.sync_my_user');
select function_privs_are('public', 'sync_my_user', array[]::text[], 'supabase_auth_admin',
  array[]::text[], 'supabase_auth_admin may not execute public.sync_my_user');

select function_privs_are('user_sync_api', 'sync_my_user', array[]::text[], 'anon',
  array[]::text[], 'anon may not execute user_sync_api.sync_my_user');
select function_privs_are('user_sync_api', 'sync_my_user', array[]::text[], 'authenticated',
  array['EXECUTE'], 'authenticated may execute user_sync_api.sync_my_user');
select function_privs_are('user_sync_api', 'sync_my_user', array[]::text[], 'service_role',
  array[]::text[], 'service_role may not execute user_sync_api.sync_my_user');
select function_privs_are('user_sync_api', 'sync_my_user', array[]::text[], 'supabase_auth_admin',
  array[]::text[], 'supabase_auth_admin may not execute user_sync_api.sync_my_user');

select function_privs_are('public', 'hook_custom_access_token', array['jsonb'], 'anon',
  array[]::text[], 'anon may not execute public.hook_custom_access_token');
select function_privs_are('public', 'hook_custom_access_token', array['jsonb'], 'authenticated',
  array[]::text[], 'authenticated may not execute public.hook_custom_access_token');
select function_privs_are('public', 'hook_custom_access_token', array['jsonb'], 'service_role',
  array[]::text[], 'service_role may not execute public.hook_custom_access_token');
select function_privs_are('public', 'hook_custom_access_token', array['jsonb'],
  'supabase_auth_admin', array['EXECUTE'],
  'supabase_auth_admin may execute public.hook_custom_access_token');

select function_privs_are('public', 'hook_before_user_created', array['jsonb'], 'anon',
  array[]::text[], 'anon may not execute public.hook_before_user_created');
select function_privs_are('public', 'hook_before_user_created', array['jsonb'], 'authenticated',
  array[]::text[], 'authenticated may not execute public.hook_before_user_created');
select function_privs_are('public', 'hook_before_user_created', array['jsonb'], 'service_role',
  array[]::text[], 'service_role may not execute public.hook_before_user_created');
select function_privs_are('public', 'hook_before_user_created', array['jsonb'],
  'supabase_auth_admin', array['EXECUTE'],
  'supabase_auth_admin may execute public.hook_before_user_created');

-- Auth finds the hooks: GoTrue's role may use schema public.
select ok(pg_catalog.has_schema_privilege('supabase_auth_admin', 'public', 'USAGE'),
  'supabase_auth_admin may use schema public (to call the Postgres-function hooks)');

-- Calling them as PostgREST would. anon (the publishable key): nothing.
set local role anon;
set local request.jwt.claims to :'anon_claims';
select throws_ok(pg_catalog.format('select public.sync_user(%L)', :'me'), '42501', null,
  'anon: public.sync_user is refused');
select throws_ok(
  pg_catalog.format(
    'select public.resync_users(p_dry_run => true, p_user_ids => array[%L]::uuid[])', :'me'),
  '42501', null, 'anon: public.resync_users is refused');
select throws_ok('select public.sync_my_user()', '42501', null,
  'anon: public.sync_my_user is refused');
select throws_ok('select user_sync_api.sync_my_user()', '42501', null,
  'anon: user_sync_api.sync_my_user is refused');
select throws_ok(pg_catalog.format('select public.hook_custom_access_token(%L)', :'token_event'),
  '42501', null, 'anon: public.hook_custom_access_token is refused');
select throws_ok(pg_catalog.format('select public.hook_before_user_created(%L)', :'signup_event'),
  '42501', null, 'anon: public.hook_before_user_created is refused');
reset role;

-- authenticated (a user's JWT): only sync_my_user, for themselves.
set local role authenticated;
set local request.jwt.claims to :'me_claims';
select throws_ok(pg_catalog.format('select public.sync_user(%L)', :'me'), '42501', null,
  'authenticated: public.sync_user is refused');
select throws_ok(
  pg_catalog.format(
    'select public.resync_users(p_dry_run => true, p_user_ids => array[%L]::uuid[])', :'me'),
  '42501', null, 'authenticated: public.resync_users is refused');
select throws_ok(pg_catalog.format('select public.hook_custom_access_token(%L)', :'token_event'),
  '42501', null, 'authenticated: public.hook_custom_access_token is refused');
select throws_ok(pg_catalog.format('select public.hook_before_user_created(%L)', :'signup_event'),
  '42501', null, 'authenticated: public.hook_before_user_created is refused');
select is(
  public.sync_my_user() - 'role',
  pg_catalog.jsonb_build_object('user_id', :'me', 'action', 'unchanged'),
  'authenticated: public.sync_my_user() syncs the caller, whose row the trigger already wrote'
);
select is(
  user_sync_api.sync_my_user() ->> 'user_id',
  :'me',
  'authenticated: user_sync_api.sync_my_user() answers for the caller'
);
set local request.jwt.claims to :'no_sub_claims';
select throws_ok('select public.sync_my_user()', '42501',
  'sync_my_user() needs a signed-in user: the request carries no user id.',
  'authenticated without a user id: public.sync_my_user raises 42501');
reset role;

-- service_role (the secret key): sync_user and resync_users, not the user's or Auth's functions.
set local role service_role;
set local request.jwt.claims to :'service_claims';
select is(
  public.sync_user(:'me') ->> 'action',
  'unchanged',
  'service_role: public.sync_user runs'
);
select is(
  public.resync_users(p_dry_run => true, p_user_ids => array[:'me']::uuid[]) ->> 'auth_users',
  '1',
  'service_role: public.resync_users runs (a dry run of this file''s user)'
);
select throws_ok('select public.sync_my_user()', '42501', null,
  'service_role: public.sync_my_user is refused');
select throws_ok(pg_catalog.format('select public.hook_custom_access_token(%L)', :'token_event'),
  '42501', null, 'service_role: public.hook_custom_access_token is refused');
select throws_ok(pg_catalog.format('select public.hook_before_user_created(%L)', :'signup_event'),
  '42501', null, 'service_role: public.hook_before_user_created is refused');
reset role;

select * from finish();
rollback;
