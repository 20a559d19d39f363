-- supabase-user-sync acceptance suite 2/7: exactly who may execute each API function, from the
-- catalog and by calling it as PostgREST does (`set local role`, `request.jwt.claims`).
--
--   public.sync_user(uuid, text, jsonb)                      service_role
--   public.resync_users(boolean, uuid[], integer, uuid)      service_role
--   public.sync_my_user()                                    authenticated
--   user_sync_api.sync_my_user()                             authenticated
--   public.hook_custom_access_token(jsonb)                   supabase_auth_admin
--   public.hook_before_user_created(jsonb)                   supabase_auth_admin, service_role
--                                   (service_role: the HTTP hook asks the same rule)
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

-- This file's user, as GoTrue's email sign-up writes it (first two statements). GoTrue's INSERT
-- names every column of its model (03 writes it out); those not named here it writes as null or
-- as the column's default, so the row, which is all the trigger sees, is the same.
insert into auth.users (id, email, email_confirmed_at, instance_id, aud, role, encrypted_password,
  confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at)
values (:'me', :'me' || '@example.com', now(), '00000000-0000-0000-0000-000000000000',
  'authenticated', '', '', '', '', '', '', '{"provider": "email", "providers": ["email"]}', '{}',
  now(), now());
update auth.users set role = 'authenticated', updated_at = now() where id = :'me';

-- The API functions, each with the roles it is for.
create temporary table api_function (n, schema, name, args, call, for_roles) as values
  (1, 'public', 'sync_user', array['uuid', 'text', 'jsonb'],
    pg_catalog.format('select public.sync_user(%L)', :'me'), array['service_role']),
  (2, 'public', 'resync_users', array['boolean', 'uuid[]', 'integer', 'uuid'],
    pg_catalog.format(
      'select public.resync_users(p_dry_run => true, p_user_ids => array[%L]::uuid[])', :'me'),
    array['service_role']),
  (3, 'public', 'sync_my_user', array[]::text[], 'select public.sync_my_user()',
    array['authenticated']),
  (4, 'user_sync_api', 'sync_my_user', array[]::text[], 'select user_sync_api.sync_my_user()',
    array['authenticated']),
  (5, 'public', 'hook_custom_access_token', array['jsonb'],
    pg_catalog.format('select public.hook_custom_access_token(%L)', :'token_event'),
    array['supabase_auth_admin']),
  (6, 'public', 'hook_before_user_created', array['jsonb'],
    pg_catalog.format('select public.hook_before_user_created(%L)', :'signup_event'),
    array['supabase_auth_admin', 'service_role']);

-- From the catalog: EXECUTE for exactly the roles each function is for, and for none of the
-- other roles a request or Auth acts as.
select function_privs_are(f.schema, f.name, f.args, r.grantee,
  case when r.grantee = any (f.for_roles) then array['EXECUTE'] else array[]::text[] end,
  pg_catalog.format('%s may %sexecute %s.%s', r.grantee,
    case when r.grantee = any (f.for_roles) then '' else 'not ' end, f.schema, f.name))
from api_function f
cross join (values (1, 'anon'), (2, 'authenticated'), (3, 'service_role'),
  (4, 'supabase_auth_admin')) as r (n, grantee)
order by f.n, r.n;

-- Auth finds the hooks: GoTrue's role may use schema public.
select ok(pg_catalog.has_schema_privilege('supabase_auth_admin', 'public', 'USAGE'),
  'supabase_auth_admin may use schema public (to call the Postgres-function hooks)');

-- Calling them as PostgREST would: it sets the role and the JWT's claims for the transaction
-- (set_config(…, true), as `set local` does), then runs the call. Each role below is refused
-- (42501) every function not granted to it: anon (the publishable key) all of them, a user's
-- JWT all but sync_my_user, the secret key all but sync_user, resync_users and the
-- before-user-created rule.
create function pg_temp.refused(p_role text, p_claims text, p_function text, p_call text)
returns text language plpgsql as $$
begin
  perform pg_catalog.set_config('role', p_role, true),
    pg_catalog.set_config('request.jwt.claims', p_claims, true);
  return throws_ok(p_call, '42501', null, pg_catalog.format('%s: %s is refused', p_role,
    p_function));
end
$$;
select pg_temp.refused(r.grantee, r.claims, f.schema || '.' || f.name, f.call)
from (values
    (1, 'anon', :'anon_claims', array[1, 2, 3, 4, 5, 6]),
    (2, 'authenticated', :'me_claims', array[1, 2, 5, 6]),
    (3, 'service_role', :'service_claims', array[3, 5])
  ) as r (n, grantee, claims, refused)
  join api_function f on f.n = any (r.refused)
order by r.n, f.n;
reset role;

-- authenticated (a user's JWT): sync_my_user, for themselves.
set local role authenticated;
set local request.jwt.claims to :'me_claims';
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

-- service_role (the secret key): sync_user and resync_users.
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
select is(
  public.hook_before_user_created(:'signup_event'),
  '{}'::jsonb,
  'service_role: public.hook_before_user_created answers (the HTTP hook asks it)'
);
reset role;

select * from finish();
rollback;
