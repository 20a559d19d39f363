-- supabase-user-sync acceptance suite 7/7: the Auth hooks as Postgres functions, and their
-- contract.
--
-- public.hook_custom_access_token(event): answers {"claims": …} whose claims equal the input
-- claims as jsonb in every key but user_role, which is ours: the role rule's answer for the user
-- (app_metadata's known role, else the row's self-assignable role, else the default; for a user
-- the database cannot see yet, the creation rule over the claims), never what the event carried.
-- It syncs the user on the way and never raises.
--
-- public.hook_before_user_created(event): {} to allow a sign-up, or an error object for one
-- that asks in user_metadata for a role it may not choose; it writes nothing.
--
-- Auth calls them as supabase_auth_admin, a role `postgres` may not become on hosted. They are
-- security definer functions owned by the migration role, so they run as their owner whoever
-- calls; this suite calls them as `postgres`, inside Auth's statement timeout, and file 2
-- checks that Auth's role (and only it) may execute them. Fresh random users; rolled back.

begin;
select plan(24);

select
  'pgtap_self_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8)
    as self_role,
  'pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8)
    as staff_role,
  (select r.role from user_sync.roles r where r.is_default) as default_role,
  gen_random_uuid() as u_staff,
  gen_random_uuid() as u_plain,
  gen_random_uuid() as u_self,
  gen_random_uuid() as u_missing,
  gen_random_uuid() as u_unseen,
  gen_random_uuid() as session_id
\gset
insert into user_sync.roles (role, self_assignable, description) values
  (:'self_role', true, 'pgTAP: self-assignable; rolled back'),
  (:'staff_role', false, 'pgTAP: granted only through app_metadata; rolled back');

-- Four users: one granted the staff role in app_metadata, one plain, one who chose the
-- self-assignable role at sign-up, one whose app row will be lost (signup.go: INSERT, SetRole).
-- GoTrue's INSERT names every column of its model (03 writes it out); those not named here it
-- writes as null or as the column's default, so the row, which is all the trigger sees, is the
-- same.
insert into auth.users (id, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
  instance_id, aud, role, encrypted_password, confirmation_token, recovery_token,
  email_change_token_new, email_change, created_at, updated_at)
select s.id, s.id::text || '@example.com', now(), s.app, s.data,
  '00000000-0000-0000-0000-000000000000', 'authenticated', '', '', '', '', '', '', now(), now()
from (values
  (:'u_staff'::uuid,
    pg_catalog.jsonb_build_object('provider', 'email', 'providers', array['email'],
      'role', :'staff_role'),
    '{}'::jsonb),
  (:'u_plain'::uuid, '{"provider": "email", "providers": ["email"]}'::jsonb, '{}'::jsonb),
  (:'u_self'::uuid, '{"provider": "email", "providers": ["email"]}'::jsonb,
    pg_catalog.jsonb_build_object('role', :'self_role')),
  (:'u_missing'::uuid, '{"provider": "email", "providers": ["email"]}'::jsonb, '{}'::jsonb)
) as s (id, app, data);
update auth.users set role = 'authenticated', updated_at = now()
where id = any (array[:'u_staff', :'u_plain', :'u_self', :'u_missing']::uuid[]);

-- Claims as GoTrue builds them (tokens/service.go): every required key, amr objects, plus a
-- claim some other code added and a user_role that should not be there.
select
  pg_catalog.jsonb_build_object(
    'iss', 'https://pgtap.supabase.co/auth/v1', 'sub', :'u_staff', 'aud', 'authenticated',
    'exp', 1893456000, 'iat', 1893452400, 'email', :'u_staff' || '@example.com', 'phone', '',
    'app_metadata', pg_catalog.jsonb_build_object('provider', 'email', 'providers',
      array['email'], 'role', :'staff_role'),
    'user_metadata', '{}'::jsonb, 'role', 'authenticated', 'aal', 'aal1',
    'amr', '[{"method": "password", "timestamp": 1893452400}]'::jsonb,
    'session_id', :'session_id', 'is_anonymous', false,
    'org_id', 'pgtap-org', 'user_role', 'admin'
  )::text as staff_claims,
  -- aud as an array (GoTrue's first token after a start may serialise it so), nested values.
  pg_catalog.jsonb_build_object(
    'iss', 'https://pgtap.supabase.co/auth/v1', 'sub', :'u_plain', 'aud',
    '["authenticated"]'::jsonb, 'exp', 1893456000, 'iat', 1893452400,
    'email', :'u_plain' || '@example.com', 'phone', '',
    'app_metadata', '{"provider": "email", "providers": ["email"]}'::jsonb,
    'user_metadata', '{"nested": {"a": [1, 2, {"b": null}]}, "emoji": "\u00e9\u2713"}'::jsonb,
    'role', 'authenticated', 'aal', 'aal2',
    'amr', '[{"method": "totp", "timestamp": 1893452400},
      {"method": "password", "timestamp": 1893452000}]'::jsonb,
    'session_id', :'session_id', 'is_anonymous', false
  )::text as plain_claims
\gset

set local statement_timeout to '2000';

-- The event Auth sends the custom access token hook.
create function pg_temp.token_event(p_user_id text, p_claims jsonb, p_method text) returns jsonb
language sql as $$
  select pg_catalog.jsonb_build_object('user_id', p_user_id, 'claims', p_claims,
    'authentication_method', p_method)
$$;

-- The answer's shape, for a user granted a role in app_metadata and for a plain user.
select is(
  (select array(select pg_catalog.jsonb_object_keys(public.hook_custom_access_token(
    pg_temp.token_event(:'u_staff', :'staff_claims', 'password'))))),
  array['claims'],
  'custom access token: the answer is {"claims": …} and nothing else'
);
select is(
  (public.hook_custom_access_token(pg_temp.token_event(:'u_staff', :'staff_claims', 'password'))
    -> 'claims') - 'user_role',
  :'staff_claims'::jsonb - 'user_role',
  'custom access token: every input claim but user_role comes back unchanged'
);
select is(
  public.hook_custom_access_token(pg_temp.token_event(:'u_plain', :'plain_claims', 'totp'))
    -> 'claims',
  :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('user_role', :'default_role'),
  'custom access token: the input claims exactly (aud array, nested metadata) plus user_role'
);

-- user_role in the token, whatever the event carried: the role rule's answer for the user. The
-- rows run in this order; before them u_missing's app row is lost (the hook syncs on the way, so
-- a sign-in brings it back), after them the staff role is revoked.
delete from public.users where id = :'u_missing';
select is(
  public.hook_custom_access_token(pg_temp.token_event(t.user_id, t.claims, t.method))
    #>> '{claims,user_role}',
  t.user_role,
  'custom access token' || t.description)
from (values
  (:'u_staff', :'staff_claims'::jsonb, 'password', :'staff_role',
    ': user_role is the role app_metadata grants, not the one the event carried'),
  (:'u_plain', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object(
      'user_metadata', pg_catalog.jsonb_build_object('role', :'staff_role'),
      'user_role', :'staff_role'),
    'token_refresh', :'default_role',
    ': a role in the claims'' user_metadata or user_role grants nothing'),
  (:'u_self', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('sub', :'u_self'),
    'password', :'self_role', ': a role the user chose at sign-up'),
  (:'u_missing', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('sub', :'u_missing'),
    'password', :'default_role',
    ' for a user whose app row is missing: the default role'),
  -- A user the database cannot see (the first token of a sign-up minted in a transaction not
  -- visible here): the creation rule over the claims, which Auth signed.
  (:'u_unseen', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('sub', :'u_unseen',
      'app_metadata', pg_catalog.jsonb_build_object('provider', 'email', 'role', :'staff_role')),
    'password', :'staff_role',
    ', user not visible: a known role in the claims'' app_metadata'),
  (:'u_unseen', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('sub', :'u_unseen',
      'user_metadata', pg_catalog.jsonb_build_object('role', :'self_role')),
    'anonymous', :'self_role',
    ', user not visible: a self-assignable role in user_metadata'),
  (:'u_unseen', :'plain_claims'::jsonb || pg_catalog.jsonb_build_object('sub', :'u_unseen',
      'user_metadata', pg_catalog.jsonb_build_object('role', :'staff_role')),
    'anonymous', :'default_role',
    ', user not visible: a role only app_metadata grants, asked for in user_metadata, gives '
      || 'the default')
) as t (user_id, claims, method, user_role, description);
select ok(
  exists (select from public.users u where u.id = :'u_missing'),
  'custom access token: the missing app row was written by the hook''s sync'
);
select ok(
  not exists (select from public.users u where u.id = :'u_unseen'),
  'custom access token, user not visible: no row is made up for it'
);
-- Revoked in app_metadata (the admin's UPDATE): the next token carries the default role.
update auth.users set raw_app_meta_data = raw_app_meta_data - 'role', updated_at = now()
where id = :'u_staff';
select is(
  public.hook_custom_access_token(pg_temp.token_event(:'u_staff', :'staff_claims',
    'token_refresh')) #>> '{claims,user_role}',
  :'default_role',
  'custom access token: after the role is revoked in app_metadata, the default role'
);

-- Never raises: odd events get an answer.
select is(
  public.hook_custom_access_token('{"user_id": "00000000-0000-0000-0000-000000000000"}'::jsonb)
    #>> '{error,http_code}',
  '500',
  'custom access token, no claims object: an error object with http_code 500'
);
select is(
  public.hook_custom_access_token(pg_catalog.jsonb_build_object('claims', :'plain_claims'::jsonb)),
  pg_catalog.jsonb_build_object('claims', :'plain_claims'::jsonb),
  'custom access token, no user_id: the claims back unchanged, without user_role'
);
select is(
  public.hook_custom_access_token(pg_catalog.jsonb_build_object(
    'user_id', 'not-a-uuid', 'claims', :'staff_claims'::jsonb)),
  pg_catalog.jsonb_build_object('claims', :'staff_claims'::jsonb - 'user_role'),
  'custom access token, a user_id that is no uuid: the claims back without user_role, no error'
);

-- ------------------------------------------------------------------------------------------
-- Before user created: {} allows the sign-up; a role in user_metadata that one may not choose
-- gets an error object that says which roles one may choose.
select volatility_is('public', 'hook_before_user_created', array['jsonb'], 'stable',
  'before user created is STABLE: it cannot write');
select is(
  public.hook_before_user_created(pg_catalog.jsonb_build_object('user', t.new_user)),
  t.answer,
  'before user created, ' || t.description)
from (values
  (pg_catalog.jsonb_build_object('id', :'u_unseen', 'email', 'new@example.com',
      'user_metadata', '{}'::jsonb),
    '{}'::jsonb, 'no role asked for: allowed ({})'),
  (pg_catalog.jsonb_build_object('id', :'u_unseen', 'user_metadata', '{"role": null}'::jsonb),
    '{}'::jsonb, 'role null: allowed'),
  (pg_catalog.jsonb_build_object('id', :'u_unseen', 'user_metadata', '{"role": ""}'::jsonb),
    '{}'::jsonb, 'role "": allowed'),
  (pg_catalog.jsonb_build_object('id', :'u_unseen',
      'user_metadata', pg_catalog.jsonb_build_object('role', :'self_role')),
    '{}'::jsonb, 'a self-assignable role: allowed'),
  (pg_catalog.jsonb_build_object('id', :'u_unseen',
      'user_metadata', pg_catalog.jsonb_build_object('role', :'staff_role')),
    pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_build_object(
      'http_code', 400,
      'message', pg_catalog.format('The role "%s" cannot be chosen at sign-up. Choose one of: %s.',
        :'staff_role',
        (select pg_catalog.string_agg(r.role, ', ' order by r.is_default desc, r.role)
         from user_sync.roles r where r.self_assignable)))),
    'a role only app_metadata grants: refused with 400 and the roles one may choose')
) as t (new_user, answer, description);
select matches(
  public.hook_before_user_created('{"user": {"user_metadata": {"role": 42}}}'::jsonb)
    #>> '{error,message}',
  '^The requested role is not valid\.',
  'before user created, a role that is not a string: refused'
);
select is(
  public.hook_before_user_created('{"metadata": {"name": "before-user-created"}}'::jsonb)
    #>> '{error,http_code}',
  '500',
  'before user created, no user object: an error object with http_code 500'
);

reset statement_timeout;

select * from finish();
rollback;
