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
-- rolled back: the sign-ups succeed, and nothing stays (nor do the helpers below, made in
-- pg_temp inside that transaction).

begin;
select plan(23);

select
  -- The role a sign-up gets when nothing else applies, as the project configured it.
  (select r.role from user_sync.roles r where r.is_default) as default_role,
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
  '$2a$10$' || pg_catalog.repeat('pgtapNotARealHash', 4) as password_hash,
  -- app_metadata as GoTrue writes it for an email sign-up.
  '{"provider": "email", "providers": ["email"]}' as email_app
\gset

-- A role of this file's own that only app_metadata can grant (rolled back with the rest).
insert into user_sync.roles (role, self_assignable, description)
values ('pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8),
  false, 'pgTAP: granted only through app_metadata; rolled back')
returning role as staff_role \gset

-- ------------------------------------------------------------------------------------------
-- GoTrue's statements, as helpers. Each runs the very statements GoTrue runs, one by one and
-- with GoTrue's SET lists (the update trigger fires only for the columns a statement names).

-- The INSERT of every sign-up (models/user.go, tx.Create): every column of GoTrue's model, with
-- '' rather than null in the tokens it leaves empty; role '' until user.SetRole.
create procedure pg_temp.gotrue_insert(p_id uuid, p_email text, p_phone text, p_password text,
  p_app jsonb, p_data jsonb, p_anonymous boolean default false)
language sql as $$
  insert into auth.users (
    instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
    confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
    email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
    raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
    phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
    email_change_token_current, email_change_confirm_status, banned_until,
    reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
  ) values (
    '00000000-0000-0000-0000-000000000000', p_id, 'authenticated', '', p_email, p_password,
    null, null, '', null, '', null, '', '', null, null, p_app, p_data, null, now(), now(),
    p_phone, null, '', '', null, '', 0, null, '', null, false, null, p_anonymous
  )
$$;

-- What GoTrue does to a user after that INSERT, step by step, in the order given (a step not
-- named below raises case_not_found).
create procedure pg_temp.gotrue(p_id uuid, variadic p_steps text[])
language plpgsql as $$
declare
  step text;
  kind text;
begin
  foreach step in array p_steps loop
    -- email or phone, for the steps that come in both kinds.
    kind := pg_catalog.split_part(step, '_', 2);
    case step
    -- user.SetRole: the second statement of every sign-up.
    when 'set_role' then
      update auth.users set role = 'authenticated', updated_at = now() where id = p_id;
    -- createNewIdentity for an email or phone address (signup, invite, admin createUser).
    when 'identity_email', 'identity_phone' then
      insert into auth.identities (
        provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
      ) select p_id, p_id,
          pg_catalog.jsonb_build_object('sub', p_id, kind, pg_catalog.to_jsonb(a) -> kind,
            'email_verified', false, 'phone_verified', false),
          kind, now(), now(), now(), gen_random_uuid()
        from auth.users a where a.id = p_id;
    -- createNewIdentity for OAuth (external.go): the provider's claims, already user_metadata.
    when 'identity_oauth' then
      insert into auth.identities (
        provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
      ) select a.raw_user_meta_data ->> 'provider_id', p_id, a.raw_user_meta_data,
          a.raw_app_meta_data ->> 'provider', now(), now(), now(), gen_random_uuid()
        from auth.users a where a.id = p_id;
    -- signup.go: the new identity's data merged into user_metadata.
    when 'merge_identity' then
      update auth.users
      set raw_user_meta_data = raw_user_meta_data
          || (select i.identity_data from auth.identities i where i.user_id = p_id),
        updated_at = now()
      where id = p_id;
    -- The confirmation mail, and the invite (invite.go): a token and when it was sent.
    when 'mail_confirmation' then
      update auth.users
      set confirmation_token =
          pg_catalog.encode(pg_catalog.sha224(gen_random_uuid()::text::bytea), 'hex'),
        confirmation_sent_at = now(), updated_at = now()
      where id = p_id;
    when 'mail_invite' then
      update auth.users
      set invited_at = now(),
        confirmation_token =
          pg_catalog.encode(pg_catalog.sha224(gen_random_uuid()::text::bytea), 'hex'),
        confirmation_sent_at = now(), updated_at = now()
      where id = p_id;
    -- user.Confirm (the link, autoconfirm, a provider vouching for the address) and
    -- user.ConfirmPhone (the OTP): the confirmation, then "<kind>_verified" in user_metadata.
    when 'confirm_email', 'confirm_phone' then
      execute pg_catalog.format('update auth.users set confirmation_token = '''', %I = now(), '
        'updated_at = now() where id = $1', kind || '_confirmed_at') using p_id;
      update auth.users
      set raw_user_meta_data = raw_user_meta_data
          || pg_catalog.jsonb_build_object(kind || '_verified', true),
        updated_at = now()
      where id = p_id;
    -- A sign-in.
    when 'sign_in' then
      update auth.users set last_sign_in_at = now(), updated_at = now() where id = p_id;
    end case;
  end loop;
end
$$;

-- pgTAP's is() on a user's app row: the columns `want` names, and `confirmed` (whether
-- email_confirmed_at is set), as jsonb, so that a failure shows both. A name the row does not
-- have is left out of it, so a misspelt one fails rather than matching null.
create function pg_temp.row_is(p_id uuid, want jsonb, description text) returns text
language sql as $$
  select is((select pg_catalog.jsonb_object_agg(k, r.v -> k)
    from (select pg_catalog.to_jsonb(u) || pg_catalog.jsonb_build_object('confirmed',
        u.email_confirmed_at is not null) as v from public.users u where u.id = p_id) r,
      pg_catalog.jsonb_object_keys(want) k where r.v ? k), want, description)
$$;

-- ------------------------------------------------------------------------------------------
-- Email sign-up, "Confirm email" on (signup.go signupNewUser, then the confirmation mail).
call pg_temp.gotrue_insert(:'u_email', :'u_email' || '@example.com', null, :'password_hash',
  :'email_app', '{"full_name": "Ada Lovelace"}');
select ok(
  exists (select from public.users u where u.id = :'u_email'),
  'email sign-up: the app row exists right after GoTrue''s INSERT, in the same transaction'
);
call pg_temp.gotrue(:'u_email', 'set_role', 'identity_email', 'merge_identity',
  'mail_confirmation');
select pg_temp.row_is(:'u_email',
  pg_catalog.jsonb_build_object('email', :'u_email' || '@example.com', 'phone', null,
    'full_name', 'Ada Lovelace', 'avatar_url', null, 'role', :'default_role',
    'is_anonymous', false, 'confirmed', false, 'deleted_at', null),
  'email sign-up: email, the name from user_metadata, the default role, not confirmed yet');
-- The confirmation link (verify.go, user.Confirm).
call pg_temp.gotrue(:'u_email', 'confirm_email');
select is(
  (select u.email_confirmed_at from public.users u where u.id = :'u_email'),
  (select a.email_confirmed_at from auth.users a where a.id = :'u_email'),
  'email sign-up: the confirmation link sets email_confirmed_at in the app row'
);

-- Email sign-up with autoconfirm: the same, confirmed in the same transaction.
call pg_temp.gotrue_insert(:'u_autoconfirm', :'u_autoconfirm' || '@example.com', null,
  :'password_hash', :'email_app',
  '{"name": "Grace Hopper", "avatar_url": "https://example.com/grace.png"}');
call pg_temp.gotrue(:'u_autoconfirm', 'set_role', 'identity_email', 'merge_identity',
  'confirm_email');
select pg_temp.row_is(:'u_autoconfirm',
  pg_catalog.jsonb_build_object('email', :'u_autoconfirm' || '@example.com',
    'full_name', 'Grace Hopper', 'avatar_url', 'https://example.com/grace.png',
    'role', :'default_role', 'confirmed', true),
  'email sign-up with autoconfirm: name and avatar_url from user_metadata, confirmed');

-- ------------------------------------------------------------------------------------------
-- Phone sign-up (signup.go): no email at all, the number as digits; then the OTP
-- (user.ConfirmPhone).
call pg_temp.gotrue_insert(:'u_phone', null, :'phone', :'password_hash',
  '{"provider": "phone", "providers": ["phone"]}', '{}');
select ok(
  exists (select from public.users u where u.id = :'u_phone'),
  'phone sign-up: the app row exists right after GoTrue''s INSERT'
);
call pg_temp.gotrue(:'u_phone', 'set_role', 'identity_phone', 'merge_identity', 'confirm_phone');
select pg_temp.row_is(:'u_phone',
  pg_catalog.jsonb_build_object('email', null, 'phone', :'phone', 'full_name', null,
    'role', :'default_role', 'is_anonymous', false, 'confirmed', false),
  'phone sign-up: the phone number, no email, no name made up, the default role');

-- ------------------------------------------------------------------------------------------
-- Anonymous sign-in (anonymous.go): no email, no phone, no password, no identity,
-- app_metadata {}.
call pg_temp.gotrue_insert(:'u_anon', null, null, '', '{}', '{}', p_anonymous => true);
call pg_temp.gotrue(:'u_anon', 'set_role');
select pg_temp.row_is(:'u_anon',
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'avatar_url', null, 'role', :'default_role', 'is_anonymous', true),
  'anonymous sign-in: is_anonymous, no contact data, the default role');

-- ------------------------------------------------------------------------------------------
-- OAuth, Google (external.go): the provider's claims become user_metadata; Google names the
-- person in full_name and name, the picture in picture and avatar_url. The provider vouches for
-- the address (user.Confirm), and the user is signed in.
call pg_temp.gotrue_insert(:'u_google', :'u_google' || '@gmail.example', null, '',
  '{"provider": "google", "providers": ["google"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://accounts.google.com', 'sub', :'google_sub', 'name', 'Ada Lovelace',
    'email', :'u_google' || '@gmail.example',
    'picture', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'full_name', 'Ada Lovelace',
    'avatar_url', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'provider_id', :'google_sub', 'email_verified', true, 'phone_verified', false));
select ok(
  exists (select from public.users u where u.id = :'u_google'),
  'Google sign-in: the app row exists right after GoTrue''s INSERT'
);
call pg_temp.gotrue(:'u_google', 'set_role', 'identity_oauth', 'confirm_email', 'sign_in');
select pg_temp.row_is(:'u_google',
  pg_catalog.jsonb_build_object('email', :'u_google' || '@gmail.example',
    'full_name', 'Ada Lovelace',
    'avatar_url', 'https://lh3.googleusercontent.com/a/' || :'google_sub' || '=s96-c',
    'role', :'default_role', 'confirmed', true),
  'Google sign-in: name and picture from Google''s claims, confirmed, the default role');
-- A later sign-in with the same Google account (the AccountExists branch): the new claims are
-- merged into user_metadata, but the profile already belongs to the user.
update auth.identities set identity_data = identity_data
    || '{"name": "Ada King", "full_name": "Ada King"}', last_sign_in_at = now(),
  updated_at = now()
where provider_id = :'google_sub' and provider = 'google';
update auth.users set raw_user_meta_data = raw_user_meta_data
    || '{"name": "Ada King", "full_name": "Ada King"}', updated_at = now()
where id = :'u_google';
call pg_temp.gotrue(:'u_google', 'sign_in');
select is(
  (select u.full_name from public.users u where u.id = :'u_google'),
  'Ada Lovelace',
  'Google sign-in again with a new name: the name the user has is kept'
);

-- ------------------------------------------------------------------------------------------
-- OAuth, GitHub: the login in user_name and preferred_username, the picture in avatar_url, a
-- display name in name and full_name only when the profile has one (the second has none: the
-- login is the name). Otherwise as Google.
call pg_temp.gotrue_insert(:'u_github', :'u_github' || '@github.example', null, '',
  '{"provider": "github", "providers": ["github"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://api.github.com', 'sub', :'github_id', 'email', :'u_github' || '@github.example',
    'user_name', 'octocat',
    'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id' || '?v=4',
    'provider_id', :'github_id', 'email_verified', true, 'phone_verified', false,
    'preferred_username', 'octocat', 'name', 'The Octocat', 'full_name', 'The Octocat'));
call pg_temp.gotrue_insert(:'u_github_noname', :'u_github_noname' || '@github.example', null, '',
  '{"provider": "github", "providers": ["github"]}',
  pg_catalog.jsonb_build_object(
    'iss', 'https://api.github.com', 'sub', :'github_id_2',
    'email', :'u_github_noname' || '@github.example', 'user_name', 'hubot',
    'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id_2' || '?v=4',
    'provider_id', :'github_id_2', 'email_verified', true, 'phone_verified', false,
    'preferred_username', 'hubot'));
call pg_temp.gotrue(:'u_github', 'set_role', 'identity_oauth', 'confirm_email', 'sign_in');
call pg_temp.gotrue(:'u_github_noname', 'set_role', 'identity_oauth', 'confirm_email', 'sign_in');
select pg_temp.row_is(t.id, t.want, t.description)
from (values
  (:'u_github'::uuid,
    pg_catalog.jsonb_build_object('email', :'u_github' || '@github.example',
      'full_name', 'The Octocat',
      'avatar_url', 'https://avatars.githubusercontent.com/u/' || :'github_id' || '?v=4',
      'role', :'default_role', 'confirmed', true),
    'GitHub sign-in: the display name and avatar_url from GitHub''s claims, confirmed'),
  (:'u_github_noname'::uuid, '{"full_name": "hubot"}'::jsonb,
    'GitHub sign-in without a display name: the login (user_name) is the name')
) as t (id, want, description);

-- ------------------------------------------------------------------------------------------
-- Invite (invite.go): no password, an email identity, invited_at and a token.
call pg_temp.gotrue_insert(:'u_invite', :'u_invite' || '@example.com', null, '', :'email_app',
  '{"full_name": "Invited Person"}');
call pg_temp.gotrue(:'u_invite', 'set_role', 'identity_email', 'mail_invite');
select pg_temp.row_is(:'u_invite',
  pg_catalog.jsonb_build_object('email', :'u_invite' || '@example.com',
    'full_name', 'Invited Person', 'role', :'default_role', 'confirmed', false),
  'invite: the invited email and name, the default role, not confirmed');

-- ------------------------------------------------------------------------------------------
-- Admin createUser (admin.go, supabase.auth.admin.createUser with app_metadata.role): the INSERT
-- carries only {provider, providers}; the caller's app_metadata arrives in a later UPDATE,
-- then the role and the confirmation (auth#975).
call pg_temp.gotrue_insert(:'u_admin', :'u_admin' || '@example.com', null, :'password_hash',
  :'email_app', '{"full_name": "Staff Member"}');
select is(
  (select u.role from public.users u where u.id = :'u_admin'),
  :'default_role',
  'admin createUser: after the INSERT (no app_metadata role yet) the row has the default role'
);
call pg_temp.gotrue(:'u_admin', 'identity_email');
update auth.users set raw_app_meta_data = raw_app_meta_data
    || pg_catalog.jsonb_build_object('role', :'staff_role'),
  updated_at = now()
where id = :'u_admin';
select is(
  (select u.role from public.users u where u.id = :'u_admin'),
  :'staff_role',
  'admin createUser: the later app_metadata UPDATE grants its role'
);
call pg_temp.gotrue(:'u_admin', 'set_role', 'confirm_email');
select pg_temp.row_is(:'u_admin',
  pg_catalog.jsonb_build_object('email', :'u_admin' || '@example.com',
    'full_name', 'Staff Member', 'role', :'staff_role', 'confirmed', true),
  'admin createUser with email_confirm: the granted role kept, confirmed');

-- ------------------------------------------------------------------------------------------
-- Plain SQL: a seed script or the SQL editor, naming few columns, metadata or none.
insert into auth.users (id, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values (:'u_sql', :'u_sql' || '@example.com', pg_catalog.jsonb_build_object('role', :'staff_role'),
  '{"full_name": "Seeded User"}', now(), now());
select pg_temp.row_is(:'u_sql',
  pg_catalog.jsonb_build_object('email', :'u_sql' || '@example.com', 'full_name', 'Seeded User',
    'role', :'staff_role', 'is_anonymous', false),
  'plain SQL insert: a row with the metadata''s name and app_metadata''s role');
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
-- Every one of them: exactly one row, in step with the mapping, no failure on record. Each
-- query lists the users that break the rule (so a failure names them); none may.
select pg_catalog.format('{%s}', pg_catalog.concat_ws(',', :'u_email', :'u_autoconfirm',
  :'u_phone', :'u_anon', :'u_google', :'u_github', :'u_github_noname', :'u_invite', :'u_admin',
  :'u_sql', :'u_sql_bare', :'u_bulk_1', :'u_bulk_2', :'u_bulk_3')) as everyone \gset
select is(t.breaking, '{}'::uuid[], t.description)
from (values
  (array(select i from pg_catalog.unnest(:'everyone'::uuid[]) as i
      where not exists (select from public.users u where u.id = i)),
    'all 14 sign-ups have an app row'),
  (array(select f.user_id from user_sync.sync_failures f
      where f.user_id = any (:'everyone'::uuid[])),
    'no sync failure is on record for any of them'),
  (array(select i from pg_catalog.unnest(:'everyone'::uuid[]) as i
      cross join lateral user_sync.plan(i, i) p where not p.in_sync),
    'every one of them is in step with the mapping (user_sync.plan, one id at a time)'),
  (array(select u.id from public.users u join auth.users a using (id)
      where u.id = any (:'everyone'::uuid[])
        and a.created_at is not null and u.created_at is distinct from a.created_at),
    'created_at follows auth.users')
) as t (breaking, description);

select * from finish();
rollback;
