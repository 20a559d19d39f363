-- supabase-user-sync acceptance suite 3/7: every way a user comes into auth.users, written in
-- the order Supabase Auth (GoTrue) writes it, each followed by the public.users row it must
-- leave: email (confirmation on, then the link; and autoconfirm), phone, anonymous, OAuth with
-- Google's and with GitHub's metadata keys, invite, admin createUser (its app_metadata arrives
-- in a later UPDATE), and plain SQL inserts.
--
-- GoTrue writes as supabase_auth_admin; this suite runs as `postgres`, which has every right on
-- the auth tables (and bypasses their RLS) but may not become GoTrue's role. The statements are
-- GoTrue's all the same, and the trigger runs as its definer either way. Every id, email, phone
-- and provider id is fresh and random; nothing else in auth.users is read. One transaction,
-- rolled back: the sign-ups succeed, and nothing stays.

begin;
select plan(23);

select
  gen_random_uuid() as u_email,
  gen_random_uuid() as u_autoconfirm,
  gen_random_uuid() as u_phone,
  gen_random_uuid() as u_anon,
  gen_random_uuid() as u_google,
  gen_random_uuid() as u_github,
  gen_random_uuid() as u_github_noname,
  gen_random_uuid() as u_invite,
  gen_random_uuid() as u_admin,
  gen_random_uuid() as u_sql,
  gen_random_uuid() as u_sql_bare,
  gen_random_uuid() as u_bulk_1,
  gen_random_uuid() as u_bulk_2,
  gen_random_uuid() as u_bulk_3,
  -- 15 digits, as GoTrue stores a phone number (no +).
  '1' || pg_catalog.lpad((pg_catalog.floor(pg_catalog.random() * 1e14))::bigint::text, 14, '0')
    as phone,
  -- Provider ids: far above any real Google or GitHub id in use, so no clash with the project's.
  (900000000000000000000 + pg_catalog.floor(pg_catalog.random() * 1e18))::numeric::text
    as google_sub,
  (9000000000 + pg_catalog.floor(pg_catalog.random() * 1e9))::bigint::text as github_id,
  (8000000000 + pg_catalog.floor(pg_catalog.random() * 1e9))::bigint::text as github_id_2,
  -- A bcrypt hash's shape; nobody signs in with it.
  '$2a$10$' || pg_catalog.repeat('pgtapNotARealHash', 4) as password_hash
\gset

-- The role a sign-up gets when nothing else applies, as the project configured it, and a role
-- of this file's own that only app_metadata can grant (rolled back with the rest).
select r.role as default_role from user_sync.roles r where r.is_default \gset
select 'pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8)
  as staff_role \gset
insert into user_sync.roles (role, self_assignable, description)
values (:'staff_role', false, 'pgTAP: granted only through app_metadata; rolled back');

-- ------------------------------------------------------------------------------------------
-- Email sign-up, "Confirm email" on (signup.go signupNewUser, then the confirmation mail).
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_email', 'authenticated', '',
  :'u_email' || '@example.com', :'password_hash', null, null, '', null, '', null, '', '', null,
  null, '{"provider": "email", "providers": ["email"]}', '{"full_name": "Ada Lovelace"}', null,
  now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
select ok(
  exists (select from public.users u where u.id = :'u_email'),
  'email sign-up: the app row exists right after GoTrue''s INSERT, in the same transaction'
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_email';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) values (
  :'u_email', :'u_email',
  pg_catalog.jsonb_build_object('sub', :'u_email', 'email', :'u_email' || '@example.com',
    'email_verified', false, 'phone_verified', false),
  'email', now(), now(), now(), gen_random_uuid()
);
update auth.users set raw_user_meta_data = raw_user_meta_data
    || pg_catalog.jsonb_build_object('sub', :'u_email', 'email', :'u_email' || '@example.com',
      'email_verified', false, 'phone_verified', false),
  updated_at = now()
where id = :'u_email';
update auth.users
set confirmation_token =
    pg_catalog.encode(pg_catalog.sha224(gen_random_uuid()::text::bytea), 'hex'),
  confirmation_sent_at = now(), updated_at = now()
where id = :'u_email';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.avatar_url, u.role, u.is_anonymous,
      u.email_confirmed_at is not null as confirmed, u.deleted_at
    from public.users u where u.id = :'u_email') r),
  pg_catalog.jsonb_build_object('email', :'u_email' || '@example.com', 'phone', null,
    'full_name', 'Ada Lovelace', 'avatar_url', null, 'role', :'default_role',
    'is_anonymous', false, 'confirmed', false, 'deleted_at', null),
  'email sign-up: email, the name from user_metadata, the default role, not confirmed yet'
);
-- The confirmation link (verify.go, user.Confirm).
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_email';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_email';
select is(
  (select u.email_confirmed_at from public.users u where u.id = :'u_email'),
  (select a.email_confirmed_at from auth.users a where a.id = :'u_email'),
  'email sign-up: the confirmation link sets email_confirmed_at in the app row'
);

-- Email sign-up with autoconfirm: the same, confirmed in the same transaction.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_autoconfirm', 'authenticated', '',
  :'u_autoconfirm' || '@example.com', :'password_hash', null, null, '', null, '', null, '', '',
  null, null, '{"provider": "email", "providers": ["email"]}',
  '{"name": "Grace Hopper", "avatar_url": "https://example.com/grace.png"}', null,
  now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_autoconfirm';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) values (
  :'u_autoconfirm', :'u_autoconfirm',
  pg_catalog.jsonb_build_object('sub', :'u_autoconfirm',
    'email', :'u_autoconfirm' || '@example.com', 'email_verified', false, 'phone_verified', false),
  'email', now(), now(), now(), gen_random_uuid()
);
update auth.users set raw_user_meta_data = raw_user_meta_data
    || pg_catalog.jsonb_build_object('sub', :'u_autoconfirm',
      'email', :'u_autoconfirm' || '@example.com', 'email_verified', false,
      'phone_verified', false),
  updated_at = now()
where id = :'u_autoconfirm';
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_autoconfirm';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_autoconfirm';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.avatar_url, u.role, u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_autoconfirm') r),
  pg_catalog.jsonb_build_object('email', :'u_autoconfirm' || '@example.com',
    'full_name', 'Grace Hopper', 'avatar_url', 'https://example.com/grace.png',
    'role', :'default_role', 'confirmed', true),
  'email sign-up with autoconfirm: name and avatar_url from user_metadata, confirmed'
);

-- ------------------------------------------------------------------------------------------
-- Phone sign-up (signup.go): no email at all, the number as digits.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_phone', 'authenticated', '', null,
  :'password_hash', null, null, '', null, '', null, '', '', null, null,
  '{"provider": "phone", "providers": ["phone"]}', '{}', null, now(), now(), :'phone', null,
  '', '', null, '', 0, null, '', null, false, null, false
);
select ok(
  exists (select from public.users u where u.id = :'u_phone'),
  'phone sign-up: the app row exists right after GoTrue''s INSERT'
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_phone';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) values (
  :'u_phone', :'u_phone',
  pg_catalog.jsonb_build_object('sub', :'u_phone', 'phone', :'phone', 'email_verified', false,
    'phone_verified', false),
  'phone', now(), now(), now(), gen_random_uuid()
);
update auth.users set raw_user_meta_data = raw_user_meta_data
    || pg_catalog.jsonb_build_object('sub', :'u_phone', 'phone', :'phone',
      'email_verified', false, 'phone_verified', false),
  updated_at = now()
where id = :'u_phone';
-- The OTP (user.ConfirmPhone).
update auth.users set confirmation_token = '', phone_confirmed_at = now(), updated_at = now()
where id = :'u_phone';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"phone_verified": true}',
  updated_at = now()
where id = :'u_phone';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.role, u.is_anonymous,
      u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_phone') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', :'phone', 'full_name', null,
    'role', :'default_role', 'is_anonymous', false, 'confirmed', false),
  'phone sign-up: the phone number, no email, no name made up, the default role'
);

-- ------------------------------------------------------------------------------------------
-- Anonymous sign-in (anonymous.go): no email, no phone, no identity, app_metadata {}.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_anon', 'authenticated', '', null, '', null, null,
  '', null, '', null, '', '', null, null, '{}', '{}', null, now(), now(), null, null, '', '',
  null, '', 0, null, '', null, false, null, true
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_anon';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.avatar_url, u.role, u.is_anonymous
    from public.users u where u.id = :'u_anon') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'avatar_url', null, 'role', :'default_role', 'is_anonymous', true),
  'anonymous sign-in: is_anonymous, no contact data, the default role'
);

-- ------------------------------------------------------------------------------------------
-- OAuth, Google (external.go): the provider's claims become user_metadata; Google names the
-- person in full_name and name, the picture in picture and avatar_url.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_google', 'authenticated', '',
  :'u_google' || '@gmail.example', '', null, null, '', null, '', null, '', '', null, null,
  '{"provider": "google", "providers": ["google"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://accounts.google.com', 'sub', :'google_sub', 'name', 'Ada Lovelace',
    'email', :'u_google' || '@gmail.example',
    'picture', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'full_name', 'Ada Lovelace',
    'avatar_url', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'provider_id', :'google_sub', 'email_verified', true, 'phone_verified', false),
  null, now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
select ok(
  exists (select from public.users u where u.id = :'u_google'),
  'Google sign-in: the app row exists right after GoTrue''s INSERT'
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_google';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) select :'google_sub', :'u_google', a.raw_user_meta_data, 'google', now(), now(), now(),
    gen_random_uuid()
  from auth.users a where a.id = :'u_google';
-- The provider vouches for the address: user.Confirm.
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_google';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_google';
update auth.users set last_sign_in_at = now(), updated_at = now() where id = :'u_google';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.avatar_url, u.role, u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_google') r),
  pg_catalog.jsonb_build_object('email', :'u_google' || '@gmail.example',
    'full_name', 'Ada Lovelace',
    'avatar_url', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'role', :'default_role', 'confirmed', true),
  'Google sign-in: name and picture from Google''s claims, confirmed, the default role'
);
-- A later sign-in with the same Google account (the AccountExists branch): the new claims are
-- merged into user_metadata, but the profile already belongs to the user.
update auth.identities set identity_data = identity_data
    || '{"name": "Ada King", "full_name": "Ada King"}', last_sign_in_at = now(),
  updated_at = now()
where provider_id = :'google_sub' and provider = 'google';
update auth.users set raw_user_meta_data = raw_user_meta_data
    || '{"name": "Ada King", "full_name": "Ada King"}', updated_at = now()
where id = :'u_google';
update auth.users set last_sign_in_at = now(), updated_at = now() where id = :'u_google';
select is(
  (select u.full_name from public.users u where u.id = :'u_google'),
  'Ada Lovelace',
  'Google sign-in again with a new name: the name the user has is kept'
);

-- ------------------------------------------------------------------------------------------
-- OAuth, GitHub: the login in user_name and preferred_username, the picture in avatar_url, a
-- display name in name and full_name only when the profile has one.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_github', 'authenticated', '',
  :'u_github' || '@github.example', '', null, null, '', null, '', null, '', '', null, null,
  '{"provider": "github", "providers": ["github"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://api.github.com', 'sub', :'github_id', 'email', :'u_github' || '@github.example',
    'user_name', 'octocat',
    'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id' || '?v=4',
    'provider_id', :'github_id', 'email_verified', true, 'phone_verified', false,
    'preferred_username', 'octocat', 'name', 'The Octocat', 'full_name', 'The Octocat'),
  null, now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_github';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) select :'github_id', :'u_github', a.raw_user_meta_data, 'github', now(), now(), now(),
    gen_random_uuid()
  from auth.users a where a.id = :'u_github';
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_github';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_github';
update auth.users set last_sign_in_at = now(), updated_at = now() where id = :'u_github';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.avatar_url, u.role, u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_github') r),
  pg_catalog.jsonb_build_object('email', :'u_github' || '@github.example',
    'full_name', 'The Octocat',
    'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id' || '?v=4',
    'role', :'default_role', 'confirmed', true),
  'GitHub sign-in: the display name and avatar_url from GitHub''s claims, confirmed'
);

-- A GitHub profile without a display name: the login is the name.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_github_noname', 'authenticated', '',
  :'u_github_noname' || '@github.example', '', null, null, '', null, '', null, '', '', null,
  null, '{"provider": "github", "providers": ["github"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://api.github.com', 'sub', :'github_id_2',
    'email', :'u_github_noname' || '@github.example', 'user_name', 'hubot',
    'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id_2' || '?v=4',
    'provider_id', :'github_id_2', 'email_verified', true, 'phone_verified', false,
    'preferred_username', 'hubot'),
  null, now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_github_noname';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) select :'github_id_2', :'u_github_noname', a.raw_user_meta_data, 'github', now(), now(), now(),
    gen_random_uuid()
  from auth.users a where a.id = :'u_github_noname';
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_github_noname';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_github_noname';
update auth.users set last_sign_in_at = now(), updated_at = now() where id = :'u_github_noname';
select is(
  (select u.full_name from public.users u where u.id = :'u_github_noname'),
  'hubot',
  'GitHub sign-in without a display name: the login (user_name) is the name'
);

-- ------------------------------------------------------------------------------------------
-- Invite (invite.go): no password, an email identity, invited_at and a token.
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_invite', 'authenticated', '',
  :'u_invite' || '@example.com', '', null, null, '', null, '', null, '', '', null, null,
  '{"provider": "email", "providers": ["email"]}', '{"full_name": "Invited Person"}', null,
  now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_invite';
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) values (
  :'u_invite', :'u_invite',
  pg_catalog.jsonb_build_object('sub', :'u_invite', 'email', :'u_invite' || '@example.com',
    'email_verified', false, 'phone_verified', false),
  'email', now(), now(), now(), gen_random_uuid()
);
update auth.users
set invited_at = now(),
  confirmation_token = pg_catalog.encode(pg_catalog.sha224(gen_random_uuid()::text::bytea), 'hex'),
  confirmation_sent_at = now(), updated_at = now()
where id = :'u_invite';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.role, u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_invite') r),
  pg_catalog.jsonb_build_object('email', :'u_invite' || '@example.com',
    'full_name', 'Invited Person', 'role', :'default_role', 'confirmed', false),
  'invite: the invited email and name, the default role, not confirmed'
);

-- ------------------------------------------------------------------------------------------
-- Admin createUser (admin.go, supabase.auth.admin.createUser with app_metadata.role): the INSERT
-- carries only {provider, providers}; the caller's app_metadata arrives in a later UPDATE,
-- then the role and the confirmation (auth#975).
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) values (
  '00000000-0000-0000-0000-000000000000', :'u_admin', 'authenticated', '',
  :'u_admin' || '@example.com', :'password_hash', null, null, '', null, '', null, '', '', null,
  null, '{"provider": "email", "providers": ["email"]}', '{"full_name": "Staff Member"}', null,
  now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false
);
select is(
  (select u.role from public.users u where u.id = :'u_admin'),
  :'default_role',
  'admin createUser: after the INSERT (no app_metadata role yet) the row has the default role'
);
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
) values (
  :'u_admin', :'u_admin',
  pg_catalog.jsonb_build_object('sub', :'u_admin', 'email_verified', false,
    'phone_verified', false, 'email', :'u_admin' || '@example.com'),
  'email', now(), now(), now(), gen_random_uuid()
);
update auth.users set raw_app_meta_data = raw_app_meta_data
    || pg_catalog.jsonb_build_object('role', :'staff_role'),
  updated_at = now()
where id = :'u_admin';
select is(
  (select u.role from public.users u where u.id = :'u_admin'),
  :'staff_role',
  'admin createUser: the later app_metadata UPDATE grants its role'
);
update auth.users set role = 'authenticated', updated_at = now() where id = :'u_admin';
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = :'u_admin';
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"email_verified": true}',
  updated_at = now()
where id = :'u_admin';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.role, u.email_confirmed_at is not null as confirmed
    from public.users u where u.id = :'u_admin') r),
  pg_catalog.jsonb_build_object('email', :'u_admin' || '@example.com',
    'full_name', 'Staff Member', 'role', :'staff_role', 'confirmed', true),
  'admin createUser with email_confirm: the granted role kept, confirmed'
);

-- ------------------------------------------------------------------------------------------
-- Plain SQL: a seed script or the SQL editor, naming few columns, metadata or none.
insert into auth.users (id, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values (:'u_sql', :'u_sql' || '@example.com', pg_catalog.jsonb_build_object('role', :'staff_role'),
  '{"full_name": "Seeded User"}', now(), now());
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.role, u.is_anonymous
    from public.users u where u.id = :'u_sql') r),
  pg_catalog.jsonb_build_object('email', :'u_sql' || '@example.com', 'full_name', 'Seeded User',
    'role', :'staff_role', 'is_anonymous', false),
  'plain SQL insert: a row with the metadata''s name and app_metadata''s role'
);
insert into auth.users (id) values (:'u_sql_bare');
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.role, u.created_at is not null as has_created_at
    from public.users u where u.id = :'u_sql_bare') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'role', :'default_role', 'has_created_at', true),
  'plain SQL insert of an id alone (null metadata, no created_at): a row with the default role'
);
insert into auth.users (id, email, created_at, updated_at)
select i, i::text || '@example.com', now(), now()
from pg_catalog.unnest(array[:'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[]) as i;
select is(
  (select pg_catalog.count(*) from public.users u
   where u.id = any (array[:'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[])),
  3::bigint,
  'plain SQL bulk insert ... select: one app row per auth user'
);

-- ------------------------------------------------------------------------------------------
-- Every one of them: exactly one row, in step with the mapping, no failure on record.
select is(
  (select pg_catalog.count(*) from public.users u
   where u.id = any (array[:'u_email', :'u_autoconfirm', :'u_phone', :'u_anon', :'u_google',
     :'u_github', :'u_github_noname', :'u_invite', :'u_admin', :'u_sql', :'u_sql_bare',
     :'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[])),
  14::bigint,
  'all 14 sign-ups have an app row'
);
select is(
  (select pg_catalog.count(*) from user_sync.sync_failures f
   where f.user_id = any (array[:'u_email', :'u_autoconfirm', :'u_phone', :'u_anon',
     :'u_google', :'u_github', :'u_github_noname', :'u_invite', :'u_admin', :'u_sql',
     :'u_sql_bare', :'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[])),
  0::bigint,
  'no sync failure is on record for any of them'
);
select is(
  (select pg_catalog.array_agg(i order by i)
   from pg_catalog.unnest(array[:'u_email', :'u_autoconfirm', :'u_phone', :'u_anon', :'u_google',
       :'u_github', :'u_github_noname', :'u_invite', :'u_admin', :'u_sql', :'u_sql_bare',
       :'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[]) as i
   cross join lateral user_sync.plan(i, i) p
   where not p.in_sync),
  null,
  'every one of them is in step with the mapping (user_sync.plan, one id at a time)'
);
select is(
  (select pg_catalog.count(*) from public.users u
   where u.id = any (array[:'u_email', :'u_autoconfirm', :'u_phone', :'u_anon', :'u_google',
     :'u_github', :'u_github_noname', :'u_invite', :'u_admin', :'u_sql', :'u_sql_bare',
     :'u_bulk_1', :'u_bulk_2', :'u_bulk_3']::uuid[])
     and u.created_at is distinct from (select a.created_at from auth.users a where a.id = u.id)
     and (select a.created_at from auth.users a where a.id = u.id) is not null),
  0::bigint,
  'created_at follows auth.users'
);

select * from finish();
rollback;
