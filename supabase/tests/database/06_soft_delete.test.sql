-- supabase-user-sync acceptance suite 6/7: deleting users. A soft delete (admin
-- deleteUser(id, true), GoTrue's SoftDeleteUser: several UPDATEs) leaves a marked row: deleted_at
-- set, no email, phone, name or avatar, and only the default role, whatever role the user had;
-- resync and the token hook agree. A hard delete removes the app row with the auth user.
--
-- Fresh random users only; one transaction, rolled back.

begin;
select plan(13);

select
  gen_random_uuid() as soft,
  gen_random_uuid() as hard,
  (select r.role from user_sync.roles r where r.is_default) as default_role,
  '1' || pg_catalog.lpad((pg_catalog.floor(pg_catalog.random() * 1e14))::bigint::text, 14, '0')
    as phone
\gset
-- A role of this file's own that only app_metadata can grant (rolled back with the rest).
insert into user_sync.roles (role, self_assignable, description)
values ('pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8),
  false, 'pgTAP: granted only through app_metadata; rolled back')
returning role as staff_role \gset

-- Two admin-created users with email, a profile and a granted role, the soft one with a phone
-- too (admin.go: INSERT, identity, app_metadata UPDATE, SetRole, confirmation). GoTrue's INSERT
-- names every column of its model (03 writes it out); those not named here it writes as null
-- or as the column's default, so the row, which is all the trigger sees, is the same.
insert into auth.users (id, email, phone, encrypted_password, raw_user_meta_data,
  raw_app_meta_data, instance_id, aud, role, confirmation_token, recovery_token,
  email_change_token_new, email_change, created_at, updated_at)
select s.id, s.id::text || '@example.com', s.phone,
  '$2a$10$' || pg_catalog.repeat('pgtapNotARealHash', 4),
  '{"full_name": "Soon Deleted", "avatar_url": "https://example.com/gone.png"}',
  '{"provider": "email", "providers": ["email"]}', '00000000-0000-0000-0000-000000000000',
  'authenticated', '', '', '', '', '', now(), now()
from (values (:'soft'::uuid, :'phone'::text), (:'hard'::uuid, null)) as s (id, phone);
insert into auth.identities (
  provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id
)
select i, i, pg_catalog.jsonb_build_object('sub', i, 'email', i::text || '@example.com',
    'email_verified', false, 'phone_verified', false),
  'email', now(), now(), now(), gen_random_uuid()
from pg_catalog.unnest(array[:'soft', :'hard']::uuid[]) as i;
update auth.users
set raw_app_meta_data = raw_app_meta_data || pg_catalog.jsonb_build_object('role', :'staff_role'),
  updated_at = now()
where id = any (array[:'soft', :'hard']::uuid[]);
update auth.users set role = 'authenticated', updated_at = now()
where id = any (array[:'soft', :'hard']::uuid[]);
update auth.users set confirmation_token = '', email_confirmed_at = now(), updated_at = now()
where id = any (array[:'soft', :'hard']::uuid[]);
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.role, u.deleted_at from public.users u
    where u.id = :'soft') r),
  pg_catalog.jsonb_build_object('email', :'soft' || '@example.com', 'phone', :'phone',
    'full_name', 'Soon Deleted', 'role', :'staff_role', 'deleted_at', null),
  'before: the user has contact data, a profile and a granted role'
);

-- Soft delete (models/user.go SoftDeleteUser). 1: email, phone and pending changes obfuscated
-- (a value derived from them, not them), password and tokens cleared, deleted_at set.
update auth.users
set email = pg_catalog.encode(pg_catalog.sha256((id::text || email)::bytea), 'hex')
    || '@deleted.invalid',
  phone = pg_catalog.left(
    pg_catalog.encode(pg_catalog.sha256((id::text || phone)::bytea), 'hex'), 15),
  encrypted_password = null, email_change = '', phone_change = '', confirmation_token = '',
  recovery_token = '', email_change_token_current = '', email_change_token_new = '',
  phone_change_token = '', reauthentication_token = '', deleted_at = now(), updated_at = now()
where id = :'soft';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.avatar_url, u.role,
      u.deleted_at is not null as deleted
    from public.users u where u.id = :'soft') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'avatar_url', null, 'role', :'default_role', 'deleted', true),
  'soft delete, first UPDATE: the row is marked at once (no contact data, no profile, default role)'
);
-- 2: every user_metadata key removed (the merged map written back); 3: app_metadata emptied;
-- 4: the identities lose their data.
update auth.users set raw_user_meta_data = '{}', updated_at = now() where id = :'soft';
update auth.users set raw_app_meta_data = '{}'::jsonb, updated_at = now() where id = :'soft';
update auth.identities set identity_data = '{}'::jsonb, updated_at = now()
where user_id = :'soft';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.avatar_url, u.role from public.users u
    where u.id = :'soft') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'avatar_url', null, 'role', :'default_role'),
  'soft delete, all four UPDATEs: still marked, nothing came back'
);
select is(
  (select u.deleted_at from public.users u where u.id = :'soft'),
  (select a.deleted_at from auth.users a where a.id = :'soft'),
  'soft delete: deleted_at follows auth.users'
);
select ok(
  not exists (
    select from public.users u
    where u.id = :'soft' and pg_catalog.to_jsonb(u)::text like '%deleted.invalid%'),
  'soft delete: the obfuscated address is not copied anywhere in the row'
);
select ok(
  not exists (select from user_sync.sync_failures f where f.user_id = :'soft'),
  'soft delete: no sync failure on record'
);

-- Every other path agrees with the trigger.
set local role service_role;
select is(
  public.resync_users(p_dry_run => true, p_user_ids => array[:'soft']::uuid[])
    - 'failures_pending' - 'dry_run' - 'scope' - 'next_cursor' - 'done',
  '{"auth_users": 1, "app_users": 1, "missing": 0, "stale": 0, "orphaned": 0, "inserted": 0,
    "updated": 0, "deleted": 0, "unchanged": 1, "failed": 0}'::jsonb,
  'soft-deleted: resync finds the marked row in step'
);
reset role;
delete from public.users where id = :'soft';
set local role service_role;
select is(
  public.resync_users(p_user_ids => array[:'soft']::uuid[]) ->> 'inserted',
  '1',
  'soft-deleted, app row lost: resync writes it back'
);
select is(
  public.sync_user(:'soft') - 'user_id',
  pg_catalog.jsonb_build_object('action', 'unchanged', 'role', :'default_role',
    'user_role', :'default_role'),
  'soft-deleted: sync_user says the default role, for the row and for a token'
);
reset role;
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.phone, u.full_name, u.avatar_url, u.role, u.deleted_at is not null as deleted
    from public.users u where u.id = :'soft') r),
  pg_catalog.jsonb_build_object('email', null, 'phone', null, 'full_name', null,
    'avatar_url', null, 'role', :'default_role', 'deleted', true),
  'soft-deleted: the row resync wrote back is marked the same way'
);
select is(
  public.hook_custom_access_token(pg_catalog.jsonb_build_object(
    'user_id', :'soft',
    'claims', pg_catalog.jsonb_build_object('sub', :'soft', 'role', 'authenticated',
      'app_metadata', pg_catalog.jsonb_build_object('role', :'staff_role')),
    'authentication_method', 'token_refresh')) #>> '{claims,user_role}',
  :'default_role',
  'soft-deleted: a token (were one minted) carries the default role, whatever the claims said'
);

-- Hard delete (DELETE /admin/users/:id): the app row goes with the auth user (the foreign
-- key's cascade), and nothing is left to resync.
delete from auth.users where id = :'hard';
select ok(
  not exists (select from public.users u where u.id = :'hard'),
  'hard delete: the app row is gone with the auth user'
);
set local role service_role;
select is(
  public.sync_user(:'hard') ->> 'action',
  'not_found',
  'hard delete: sync_user finds neither row'
);
reset role;

select * from finish();
rollback;
