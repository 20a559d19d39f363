-- supabase-user-sync acceptance suite 5/7: repairing drift. resync_users' dry run reports it and
-- writes nothing, the real run repairs it and drains the failures on record, a second dry run
-- finds nothing; sync_user and sync_my_user heal one user. Always of this file's own users
-- only: every resync_users call names them in p_user_ids, so no other user of the project is
-- read or written, and a user left out of the list stays as it is.
--
-- Drift is made the only way it can arise on a live install: app rows deleted or changed behind
-- the sync's back, and a failure recorded as the trigger records one. One transaction, rolled
-- back.

begin;
select plan(20);

select
  gen_random_uuid() as r_missing,
  gen_random_uuid() as r_stale_role,
  gen_random_uuid() as r_stale_email,
  gen_random_uuid() as r_ok,
  gen_random_uuid() as r_failed,
  gen_random_uuid() as r_outside,
  gen_random_uuid() as r_nobody,
  -- The role a sign-up gets when nothing else applies, as the project configured it.
  (select r.role from user_sync.roles r where r.is_default) as default_role
\gset
select
  pg_catalog.format('{%s,%s,%s,%s,%s}', :'r_missing', :'r_stale_role', :'r_stale_email', :'r_ok',
    :'r_failed') as listed,
  pg_catalog.json_build_object('sub', :'r_ok', 'role', 'authenticated')::text as ok_claims
\gset
-- A role of this file's own that only app_metadata can grant (rolled back with the rest).
insert into user_sync.roles (role, self_assignable, description)
values ('pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8),
  false, 'pgTAP: granted only through app_metadata; rolled back')
returning role as staff_role \gset

-- Six email sign-ups (signup.go: INSERT, then SetRole). GoTrue's INSERT names every column of
-- its model (03 writes it out); those not named here it writes as null or as the column's
-- default, so the row, which is all the trigger sees, is the same.
insert into auth.users (id, email, raw_user_meta_data, raw_app_meta_data, instance_id, aud, role,
  encrypted_password, confirmation_token, recovery_token, email_change_token_new, email_change,
  created_at, updated_at)
select i, i::text || '@example.com', '{"full_name": "Resync Test"}',
  '{"provider": "email", "providers": ["email"]}', '00000000-0000-0000-0000-000000000000',
  'authenticated', '', '', '', '', '', '', now(), now()
from pg_catalog.unnest(array[:'r_missing', :'r_stale_role', :'r_stale_email', :'r_ok',
  :'r_failed', :'r_outside']::uuid[]) as i;
update auth.users set role = 'authenticated', updated_at = now()
where id = any (array[:'r_missing', :'r_stale_role', :'r_stale_email', :'r_ok', :'r_failed',
  :'r_outside']::uuid[]);

-- Drift: two rows gone, a role and an email changed behind the sync's back, a failure on record
-- (user_sync.record_failure, as the trigger records one), and a user left out of every list.
delete from public.users where id = any (array[:'r_missing', :'r_failed', :'r_outside']::uuid[]);
update public.users set role = :'staff_role' where id = :'r_stale_role';
update public.users set email = 'stale@example.com' where id = :'r_stale_email';
-- (\gset keeps the void result off pg_prove's output.)
select user_sync.record_failure(:'r_failed', 'trigger', '55P03',
  'pgTAP: a failure on record, rolled back') is null as recorded \gset

set local role service_role;
select is(
  public.resync_users(p_dry_run => true, p_user_ids => :'listed'::uuid[]) - 'failures_pending',
  '{"dry_run": true, "scope": "ids", "auth_users": 5, "app_users": 3, "missing": 2, "stale": 2,
    "orphaned": 0, "inserted": 0, "updated": 0, "deleted": 0, "unchanged": 1, "failed": 0,
    "next_cursor": null, "done": true}'::jsonb,
  'dry run: 2 missing, 2 stale, 1 unchanged among the 5 listed users'
);
reset role;
select is(
  (select pg_catalog.count(*) from public.users u
   where u.id = any (array[:'r_missing', :'r_failed']::uuid[])),
  0::bigint,
  'dry run: the missing rows are still missing'
);
select is(
  (select pg_catalog.to_jsonb(r) from (
    select s.role, e.email from public.users s, public.users e
    where s.id = :'r_stale_role' and e.id = :'r_stale_email') r),
  pg_catalog.jsonb_build_object('role', :'staff_role', 'email', 'stale@example.com'),
  'dry run: the stale rows are still stale'
);
select ok(
  exists (select from user_sync.sync_failures f where f.user_id = :'r_failed'),
  'dry run: the failure is still on record'
);

set local role service_role;
select is(
  public.resync_users(p_user_ids => :'listed'::uuid[]) - 'failures_pending',
  '{"dry_run": false, "scope": "ids", "auth_users": 5, "app_users": 3, "missing": 2,
    "stale": 2, "orphaned": 0, "inserted": 2, "updated": 2, "deleted": 0, "unchanged": 1,
    "failed": 0, "next_cursor": null, "done": true}'::jsonb,
  'repair: 2 inserted, 2 updated, 1 unchanged'
);
reset role;
select is(
  (select pg_catalog.count(*) from public.users u where u.id = any (:'listed'::uuid[])),
  5::bigint,
  'repair: every listed user has an app row'
);
select is(
  (select u.role from public.users u where u.id = :'r_stale_role'),
  :'default_role',
  'repair: the role written behind app_metadata''s back is undone'
);
select is(
  (select u.email from public.users u where u.id = :'r_stale_email'),
  :'r_stale_email' || '@example.com',
  'repair: the email follows auth.users again'
);
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.full_name, u.role from public.users u where u.id = :'r_failed') r),
  pg_catalog.jsonb_build_object('email', :'r_failed' || '@example.com',
    'full_name', 'Resync Test', 'role', :'default_role'),
  'repair: the row of the user whose sync had failed is written'
);
select ok(
  not exists (select from user_sync.sync_failures f where f.user_id = :'r_failed'),
  'repair: the failure on record is drained'
);
select ok(
  not exists (select from public.users u where u.id = :'r_outside'),
  'repair: a user not in p_user_ids is left alone'
);
select is(
  (select pg_catalog.array_agg(i order by i)
   from pg_catalog.unnest(:'listed'::uuid[]) as i
   cross join lateral user_sync.plan(i, i) p
   where not p.in_sync),
  null,
  'repair: every listed user is in step with the mapping'
);

set local role service_role;
select is(
  public.resync_users(p_dry_run => true, p_user_ids => :'listed'::uuid[])
    - 'failures_pending' - 'dry_run' - 'scope' - 'next_cursor' - 'done',
  '{"auth_users": 5, "app_users": 5, "missing": 0, "stale": 0, "orphaned": 0, "inserted": 0,
    "updated": 0, "deleted": 0, "unchanged": 5, "failed": 0}'::jsonb,
  'a second dry run finds nothing to do'
);
select throws_ok(
  pg_catalog.format(
    'select public.resync_users(p_user_ids => array[%L]::uuid[], p_batch_size => 10)', :'r_ok'),
  '22023', 'resync_users: p_user_ids cannot be combined with p_batch_size or p_cursor.',
  'p_user_ids with p_batch_size is refused (22023)'
);

-- sync_user (the service role, as the edge function calls it) heals one user.
select is(
  public.sync_user(:'r_outside') - 'user_id',
  pg_catalog.jsonb_build_object('action', 'inserted', 'role', :'default_role',
    'user_role', :'default_role'),
  'sync_user: a missing row is inserted, and the role a token may carry is answered'
);
select is(
  public.sync_user(:'r_outside', 'webhook') ->> 'action',
  'unchanged',
  'sync_user again: unchanged'
);
select is(
  public.sync_user(:'r_nobody'),
  pg_catalog.jsonb_build_object('user_id', :'r_nobody', 'action', 'not_found', 'role', null,
    'user_role', null),
  'sync_user of an id no auth user has: not_found'
);
select throws_ok(
  pg_catalog.format('select public.sync_user(%L, %L)', :'r_ok', 'anything'),
  '22023', null,
  'sync_user with an unknown p_source is refused (22023)'
);
reset role;

-- sync_my_user (a signed-in user) heals their own row.
delete from public.users where id = :'r_ok';
set local role authenticated;
set local request.jwt.claims to :'ok_claims';
select is(
  public.sync_my_user(),
  pg_catalog.jsonb_build_object('user_id', :'r_ok', 'action', 'inserted', 'role', :'default_role'),
  'sync_my_user: a signed-in user whose row is missing gets it back'
);
reset role;
select ok(
  exists (select from public.users u where u.id = :'r_ok'),
  'sync_my_user: the row is there'
);

select * from finish();
rollback;
