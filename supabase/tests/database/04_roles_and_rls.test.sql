-- supabase-user-sync acceptance suite 4/7: roles and escalation. A role chosen in user_metadata
-- counts only at sign-up and only when it is self-assignable; later user_metadata (which every
-- user can rewrite with supabase.auth.updateUser) never changes a role; app_metadata (service
-- role only) grants and revokes; a role written straight into public.users does not survive a
-- sync. Then what a signed-in user and the anon key can do through the Data API: read their own
-- row, edit only its profile columns, never the role; anon nothing at all.
--
-- Users are made in GoTrue's statement order with fresh random ids, and acted as the way
-- PostgREST does (`set local role`, `request.jwt.claims`). Roles for the test are inserted
-- into user_sync.roles inside the transaction. Rolled back: nothing stays (nor do the helpers,
-- made in pg_temp inside the transaction).

begin;
select plan(32);

select
  gen_random_uuid() as alice,
  gen_random_uuid() as bob,
  gen_random_uuid() as chooser,
  gen_random_uuid() as climber,
  gen_random_uuid() as guesser,
  'pgtap_self_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8)
    as self_role,
  'pgtap_staff_' || pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1, 8)
    as staff_role,
  (select r.role from user_sync.roles r where r.is_default) as default_role
\gset
select
  pg_catalog.json_build_object('sub', :'alice', 'role', 'authenticated')::text as alice_claims,
  pg_catalog.json_build_object('sub', :'alice', 'role', 'anon')::text as anon_claims
\gset

-- A role anyone may choose at sign-up, and one only app_metadata can grant.
insert into user_sync.roles (role, self_assignable, description) values
  (:'self_role', true, 'pgTAP: self-assignable; rolled back'),
  (:'staff_role', false, 'pgTAP: granted only through app_metadata; rolled back');

-- The mapping reads the role lists from user_sync.role_lists, which a trigger on
-- user_sync.roles keeps in step, within the same transaction.
select is(
  (select row(l.known, l.self_assignable, l.fallback)::text
     from user_sync.role_lists l),
  (select row(
      pg_catalog.array_agg(r.role order by r.role),
      pg_catalog.array_agg(r.role order by r.role) filter (where r.self_assignable),
      max(r.role) filter (where r.is_default))::text
     from user_sync.roles r),
  'user_sync.role_lists follows user_sync.roles: every role, the self-assignable ones, the default'
);
select ok(
  (select :'self_role' = any (l.self_assignable) and not (:'staff_role' = any (l.self_assignable))
     and :'staff_role' = any (l.known)
     from user_sync.role_lists l),
  'a role added in this transaction is in the lists the mapping reads'
);

-- Five email sign-ups (signup.go: INSERT with options.data as user_metadata, then SetRole).
-- GoTrue's INSERT names every column of its model (03 writes it out); those not named here it
-- writes as null or as the column's default, so the row, which is all the trigger sees, is the
-- same.
insert into auth.users (id, email, raw_user_meta_data, raw_app_meta_data, instance_id, aud, role,
  encrypted_password, confirmation_token, recovery_token, email_change_token_new, email_change,
  created_at, updated_at)
select s.id, s.id::text || '@example.com', s.data, '{"provider": "email", "providers": ["email"]}',
  '00000000-0000-0000-0000-000000000000', 'authenticated', '', '', '', '', '', '', now(), now()
from (values
  (:'alice'::uuid, '{"full_name": "Alice"}'::jsonb),
  (:'bob'::uuid, '{"full_name": "Bob"}'::jsonb),
  (:'chooser'::uuid, pg_catalog.jsonb_build_object('role', :'self_role')),
  (:'climber'::uuid, pg_catalog.jsonb_build_object('role', :'staff_role')),
  (:'guesser'::uuid, '{"role": "pgtap_no_such_role"}'::jsonb)
) as s (id, data);
update auth.users set role = 'authenticated', updated_at = now()
where id = any (array[:'alice', :'bob', :'chooser', :'climber', :'guesser']::uuid[]);

-- ------------------------------------------------------------------------------------------
-- user_metadata at sign-up.
select is((select u.role from public.users u where u.id = t.id), t.role, t.description)
from (values
  (:'chooser'::uuid, :'self_role',
    'sign-up asking for a self-assignable role in user_metadata gets it'),
  (:'climber'::uuid, :'default_role',
    'sign-up asking for a role only app_metadata grants gets the default role'),
  (:'guesser'::uuid, :'default_role', 'sign-up asking for an unknown role gets the default role')
) as t (id, role, description);

-- Later writes of the metadata, in this order, each followed by the role it leaves: user_metadata
-- (PUT /user with data) and app_metadata (the admin's PUT /admin/users/:id). GoTrue merges the
-- keys sent into the map and writes the whole map back; a key sent as null is removed (these
-- maps are flat, so jsonb_strip_nulls removes just that key).
create function pg_temp.role_after(p_id uuid, p_map text, p_keys jsonb, p_role text,
  p_description text) returns text language plpgsql as $$
begin
  execute pg_catalog.format(
    'update auth.users set %1$I = pg_catalog.jsonb_strip_nulls(%1$I || $2), updated_at = now() '
    'where id = $1', p_map) using p_id, p_keys;
  return is((select u.role from public.users u where u.id = p_id), p_role, p_description);
end
$$;
select pg_temp.role_after(t.id, t.map, pg_catalog.jsonb_build_object('role', t.asked), t.role,
  t.description)
from (values
  (:'alice'::uuid, 'raw_user_meta_data', :'staff_role', :'default_role',
    'updateUser({data: {role}}) later: a role only app_metadata grants is not taken'),
  (:'chooser'::uuid, 'raw_user_meta_data', :'staff_role', :'self_role',
    'updateUser({data: {role}}) later: a self-chosen role is not replaced either'),
  (:'alice'::uuid, 'raw_user_meta_data', :'self_role', :'default_role',
    'updateUser({data: {role}}) later: even a self-assignable role counts only at sign-up'),
  (:'alice'::uuid, 'raw_app_meta_data', :'staff_role', :'staff_role',
    'app_metadata.role set by an admin grants the role'),
  (:'alice'::uuid, 'raw_app_meta_data', null, :'default_role',
    'app_metadata.role removed: back to the default role')
) as t (id, map, asked, role, description);

-- A role written straight into public.users, behind app_metadata's back, does not survive a
-- sync (here the service role's sync_user, as the edge function calls it).
update public.users set role = :'staff_role' where id = :'bob';
set local role service_role;
select is(
  public.sync_user(:'bob') ->> 'role',
  :'default_role',
  'a role written directly into public.users is undone by the next sync'
);
reset role;
-- A self-chosen role survives later changes of the auth user (a new email).
update auth.users set email = 'changed-' || :'chooser' || '@example.com', updated_at = now()
where id = :'chooser';
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.email, u.role from public.users u where u.id = :'chooser') r),
  pg_catalog.jsonb_build_object('email', 'changed-' || :'chooser' || '@example.com',
    'role', :'self_role'),
  'an email change is synced and the self-chosen role kept'
);

-- ------------------------------------------------------------------------------------------
-- A signed-in user through the Data API: alice's JWT.
set local role authenticated;
set local request.jwt.claims to :'alice_claims';
select results_eq(
  pg_catalog.format('select u.id from public.users u where u.id = any (array[%L, %L]::uuid[])',
    :'alice', :'bob'),
  pg_catalog.format('values (%L::uuid)', :'alice'),
  'authenticated: selecting both users returns only the own row'
);
select is_empty(
  pg_catalog.format('select u.id from public.users u where u.id = %L', :'bob'),
  'authenticated: another user''s row is invisible'
);
select lives_ok(
  pg_catalog.format(
    'update public.users set full_name = %L, avatar_url = %L where id = %L',
    'Alice A.', 'https://example.com/alice.png', :'alice'),
  'authenticated: may update full_name and avatar_url of the own row'
);
select is(
  (select pg_catalog.to_jsonb(r) from (
    select u.full_name, u.avatar_url from public.users u where u.id = :'alice') r),
  '{"full_name": "Alice A.", "avatar_url": "https://example.com/alice.png"}'::jsonb,
  'authenticated: the profile edit is stored'
);
select is_empty(
  pg_catalog.format('update public.users set full_name = %L where id = %L returning id',
    'Mallory', :'bob'),
  'authenticated: updating another user''s profile changes no row'
);
-- What alice may not do, each refused with the SQLSTATE given: 42501 (insufficient_privilege,
-- from the grants) or 23514 (check_violation, the profile's bounds).
select throws_ok(t.statement, t.sqlstate, null, 'authenticated: ' || t.refused)
from (values
  (pg_catalog.format('update public.users set role = %L where id = %L', :'staff_role', :'alice'),
    '42501', 'updating the own role is refused (42501)'),
  (pg_catalog.format('update public.users set role = %L where id = %L', :'default_role', :'alice'),
    '42501', 'updating the own role is refused even to the role already held'),
  (pg_catalog.format('update public.users set email = %L where id = %L', 'x@example.com', :'alice'),
    '42501', 'updating the own email (an auth-owned column) is refused'),
  (pg_catalog.format('insert into public.users (id, role) values (%L, %L)', gen_random_uuid(),
      :'staff_role'),
    '42501', 'inserting a row is refused'),
  (pg_catalog.format('delete from public.users where id = %L', :'alice'),
    '42501', 'deleting the own row is refused'),
  (pg_catalog.format('update public.users set full_name = %L where id = %L',
      pg_catalog.repeat('x', 201), :'alice'),
    '23514', 'a full_name over 200 characters is refused (23514)'),
  ('select r.role from user_sync.roles r', '42501', 'the role list in user_sync is out of reach')
) as t (statement, sqlstate, refused);
reset role;
-- What alice could not change is as it was.
select is((select pg_catalog.to_jsonb(u) ->> t.col from public.users u where u.id = t.id), t.want,
  t.description)
from (values
  (:'bob'::uuid, 'full_name', 'Bob', 'the other user''s profile is unchanged'),
  (:'alice'::uuid, 'role', :'default_role', 'the signed-in user''s role is unchanged')
) as t (id, col, want, description);
-- The user's own profile belongs to them: a later name in the metadata does not overwrite it.
update auth.users
set raw_user_meta_data = raw_user_meta_data || '{"full_name": "Alice From Metadata"}',
  updated_at = now()
where id = :'alice';
select is(
  (select u.full_name from public.users u where u.id = :'alice'),
  'Alice A.',
  'a profile the user edited is kept when user_metadata changes later'
);

-- ------------------------------------------------------------------------------------------
-- The anon key: no access at all, whatever the claims say; every statement refused (42501).
set local role anon;
set local request.jwt.claims to :'anon_claims';
select throws_ok(pg_catalog.format(t.statement, :'alice', :'default_role'), '42501', null,
  'anon: ' || t.refused)
from (values
  ('select u.id from public.users u where u.id = %L', 'reading public.users is refused'),
  ('update public.users set full_name = ''anon'' where id = %L',
    'updating public.users is refused'),
  ('insert into public.users (id, role) values (gen_random_uuid(), %2$L)',
    'inserting into public.users is refused'),
  ('delete from public.users where id = %L', 'deleting from public.users is refused'),
  ('select a.id from public.user_sync_audit a where a.user_id = %L',
    'reading the audit trail is refused')
) as t (statement, refused);
reset role;

select * from finish();
rollback;
