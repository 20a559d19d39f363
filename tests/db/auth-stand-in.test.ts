// The Supabase stand-in is only worth its name if it behaves like Supabase where our code
// depends on it. These tests pin that down, on the server and on PGlite alike, without relying
// on what our own migrations do.

import { describe, expect, it } from 'vitest';
import { signUpUser, sqlState, uid, useTestDb } from '../helpers/db.ts';
import * as gotrue from '../helpers/gotrue.ts';

const db = useTestDb();

describe('auth.users and auth.identities', () => {
  // The columns: docs/reference/auth-schema.md#users-table, #identities-table.
  it('have every documented column with its type, nullability and default', async () => {
    const cols = await db.query<
      {
        table: string;
        column: string;
        type: string;
        nullable: boolean;
        def: string | null;
        generated: string;
      }
    >(
      `select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
              not a.attnotnull as nullable, pg_get_expr(d.adbin, d.adrelid) as def,
              a.attgenerated::text as generated
         from pg_attribute a join pg_class c on c.oid = a.attrelid
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relnamespace = 'auth'::regnamespace and c.relname in ('users', 'identities')
          and a.attnum > 0 and not a.attisdropped`,
    );
    const col = (table: string, column: string) => {
      const found = cols.find((c) => c.table === table && c.column === column);
      if (!found) throw new Error(`auth.${table}.${column} is missing`);
      return found;
    };
    const varchar = 'character varying(255)';
    const tz = 'timestamp with time zone';
    const users: Record<string, string> = {
      instance_id: 'uuid',
      id: 'uuid',
      aud: varchar,
      role: varchar,
      email: varchar,
      encrypted_password: varchar,
      email_confirmed_at: tz,
      invited_at: tz,
      confirmation_token: varchar,
      confirmation_sent_at: tz,
      recovery_token: varchar,
      recovery_sent_at: tz,
      email_change_token_new: varchar,
      email_change: varchar,
      email_change_sent_at: tz,
      last_sign_in_at: tz,
      raw_app_meta_data: 'jsonb',
      raw_user_meta_data: 'jsonb',
      is_super_admin: 'boolean',
      created_at: tz,
      updated_at: tz,
      phone: 'text',
      phone_confirmed_at: tz,
      phone_change: 'text',
      phone_change_token: varchar,
      phone_change_sent_at: tz,
      confirmed_at: tz,
      email_change_token_current: varchar,
      email_change_confirm_status: 'smallint',
      banned_until: tz,
      reauthentication_token: varchar,
      reauthentication_sent_at: tz,
      is_sso_user: 'boolean',
      deleted_at: tz,
      is_anonymous: 'boolean',
    };
    for (const [name, type] of Object.entries(users)) {
      expect(col('users', name).type, name).toBe(type);
    }
    expect(cols.filter((c) => c.table === 'users')).toHaveLength(Object.keys(users).length);

    expect(col('users', 'id').nullable).toBe(false);
    expect(col('users', 'created_at').def).toBeNull();
    expect(col('users', 'updated_at').def).toBeNull();
    expect(col('users', 'phone_change').def).toMatch(/^''/);
    expect(col('users', 'phone_change_token').def).toMatch(/^''/);
    expect(col('users', 'email_change_token_current').def).toMatch(/^''/);
    expect(col('users', 'reauthentication_token').def).toMatch(/^''/);
    expect(col('users', 'email_change_confirm_status').def).toBe('0');
    expect(col('users', 'is_sso_user')).toMatchObject({ nullable: false, def: 'false' });
    expect(col('users', 'is_anonymous')).toMatchObject({ nullable: false, def: 'false' });
    expect(col('users', 'confirmed_at').generated).toBe('s');
    expect(col('users', 'confirmed_at').def?.toLowerCase()).toContain(
      'least(email_confirmed_at, phone_confirmed_at)',
    );

    const identities: Record<string, string> = {
      provider_id: 'text',
      user_id: 'uuid',
      identity_data: 'jsonb',
      provider: 'text',
      last_sign_in_at: tz,
      created_at: tz,
      updated_at: tz,
      email: 'text',
      id: 'uuid',
    };
    for (const [name, type] of Object.entries(identities)) {
      expect(col('identities', name).type, name).toBe(type);
    }
    for (const name of ['provider_id', 'user_id', 'identity_data', 'provider', 'id']) {
      expect(col('identities', name).nullable, name).toBe(false);
    }
    expect(col('identities', 'email').generated).toBe('s');
    expect(col('identities', 'id').def).toBe('gen_random_uuid()');
  });

  it('have the indexes and constraints GoTrue built', async () => {
    const indexes = await db.query<{ name: string; def: string }>(
      `select indexname as name, indexdef as def from pg_indexes
        where schemaname = 'auth' and tablename in ('users', 'identities')`,
    );
    const def = (name: string) => indexes.find((i) => i.name === name)?.def ?? `(no index ${name})`;
    expect(def('users_pkey')).toMatch(/UNIQUE INDEX .* \(id\)$/);
    expect(def('users_email_partial_key')).toMatch(
      /UNIQUE INDEX .*\(email\) WHERE \(is_sso_user = false\)/,
    );
    expect(def('users_phone_key')).toMatch(/UNIQUE INDEX .*\(phone\)/);
    expect(def('confirmation_token_idx')).toMatch(/UNIQUE INDEX .*\(confirmation_token\) WHERE/);
    for (
      const name of [
        'recovery_token_idx',
        'email_change_token_current_idx',
        'email_change_token_new_idx',
        'reauthentication_token_idx',
      ]
    ) {
      expect(def(name)).toMatch(/UNIQUE INDEX .* WHERE/);
    }
    expect(def('users_is_anonymous_idx')).toMatch(/\(is_anonymous\)/);
    expect(def('users_instance_id_email_idx')).toMatch(/lower/);
    expect(def('identities_pkey')).toMatch(/\(id\)$/);
    expect(def('identities_provider_id_provider_unique')).toMatch(
      /UNIQUE INDEX .*\(provider_id, provider\)/,
    );
    expect(def('identities_user_id_idx')).toMatch(/\(user_id\)/);
    expect(def('identities_email_idx')).toMatch(/text_pattern_ops/);

    const fk = await db.query<{ def: string }>(
      `select pg_get_constraintdef(oid) as def from pg_constraint
        where conrelid = 'auth.identities'::regclass and contype = 'f'`,
    );
    expect(fk.map((r) => r.def)).toEqual([
      'FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE',
    ]);
  });

  it('enforce those constraints on writes', async () => {
    const a = await signUpUser(db, 'dup');
    // Same email twice: only an SSO user may share it.
    expect(await sqlState(gotrue.signUpEmail(db, { email: a.email ?? '', autoconfirm: true })))
      .toBe(
        '23505',
      );
    await db.asAuthAdmin((tx) =>
      tx.query(
        `insert into users (id, aud, role, email, is_sso_user, created_at, updated_at)
         values (gen_random_uuid(), 'authenticated', 'authenticated', $1, true, now(), now())`,
        [a.email],
      )
    );
    const phone = `4670${Math.floor(Math.random() * 1e7)}`;
    await gotrue.signUpPhone(db, { phone, autoconfirm: true });
    expect(await sqlState(gotrue.signUpPhone(db, { phone: `+${phone}`, autoconfirm: true }))).toBe(
      '23505',
    );
    expect(
      await sqlState(
        db.query('update auth.users set email_change_confirm_status = 3 where id = $1', [a.id]),
      ),
    ).toBe('23514');
    // A non-numeric confirmation token is unique; numeric OTPs and '' are not indexed.
    await db.query(`update auth.users set confirmation_token = 'tok-${a.id}' where id = $1`, [
      a.id,
    ]);
    const b = await signUpUser(db, 'b');
    expect(
      await sqlState(
        db.query(`update auth.users set confirmation_token = 'tok-${a.id}' where id = $1`, [b.id]),
      ),
    ).toBe('23505');
    await db.query(
      `update auth.users set confirmation_token = '123456' where id = any($1::uuid[])`,
      [[a.id, b.id]],
    );
  });

  it('compute confirmed_at and refuse writes to it', async () => {
    const user = await gotrue.signUpPhone(db, {
      phone: `+1555${Math.floor(Math.random() * 1e7)}`,
      autoconfirm: true,
    });
    expect(user.confirmed_at).toEqual(user.phone_confirmed_at);
    expect(
      await sqlState(
        db.query('update auth.users set confirmed_at = now() where id = $1', [user.id]),
      ),
    )
      .toBe('428C9');
    const [row] = await db.query<{ confirmed_at: Date }>(
      `update auth.users set email_confirmed_at = '2000-01-01Z' where id = $1 returning confirmed_at`,
      [user.id],
    );
    expect(row?.confirmed_at.toISOString()).toBe('2000-01-01T00:00:00.000Z');
  });

  it('are owned by supabase_auth_admin, with RLS on, readable by postgres with grant option', async () => {
    const rows = await db.query<
      { relname: string; owner: string; rls: boolean; grantable: boolean; all: boolean }
    >(
      `select c.relname, pg_get_userbyid(c.relowner) as owner, c.relrowsecurity as rls,
              has_table_privilege('postgres', c.oid, 'SELECT WITH GRANT OPTION') as grantable,
              has_table_privilege('postgres', c.oid,
                'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') as all
         from pg_class c where c.relnamespace = 'auth'::regnamespace and c.relkind = 'r'
        order by 1`,
    );
    expect(rows).toEqual([
      {
        relname: 'identities',
        owner: 'supabase_auth_admin',
        rls: true,
        grantable: true,
        all: true,
      },
      { relname: 'users', owner: 'supabase_auth_admin', rls: true, grantable: true, all: true },
    ]);
    // The schema belongs to the superuser (supabase_admin on hosted and on the server run's
    // cluster; PGlite has only `postgres`). `postgres` may use it, not create in it.
    const [schema] = await db.query<{ owner: string; superuser: boolean; usage: boolean }>(
      `select pg_get_userbyid(n.nspowner) as owner, r.rolsuper as superuser,
              has_schema_privilege('postgres', n.oid, 'USAGE') as usage
         from pg_namespace n join pg_roles r on r.oid = n.nspowner where n.nspname = 'auth'`,
    );
    expect(schema).toEqual({
      owner: db.kind === 'server' ? 'supabase_admin' : 'postgres',
      superuser: true,
      usage: true,
    });
    if (db.kind === 'server') {
      const [create] = await db.query<{ create: boolean }>(
        `select has_schema_privilege('postgres', 'auth', 'CREATE') as create`,
      );
      expect(create).toEqual({ create: false });
    }
  });
});

describe('roles', () => {
  it('have the attributes Supabase gives them', async () => {
    const rows = await db.query<{ rolname: string } & Record<string, string | boolean>>(
      `select rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper, rolcreatedb, rolcreaterole
         from pg_roles
        where rolname in ('anon', 'authenticated', 'service_role', 'authenticator',
                          'supabase_auth_admin', 'postgres', 'supabase_admin')
        order by rolname`,
    );
    const role = (name: string) => rows.find((r) => r.rolname === name);
    // INHERIT since supabase/postgres 20230529180330.
    const attributes: Record<string, Record<string, boolean>> = {
      anon: { rolcanlogin: false, rolinherit: true, rolbypassrls: false },
      authenticated: { rolcanlogin: false, rolinherit: true, rolbypassrls: false },
      service_role: { rolcanlogin: false, rolinherit: true, rolbypassrls: true },
      authenticator: { rolcanlogin: true, rolinherit: false, rolbypassrls: false },
      supabase_auth_admin: {
        rolcanlogin: true,
        rolinherit: false,
        rolbypassrls: false,
        rolsuper: false,
      },
    };
    for (const [name, expected] of Object.entries(attributes)) {
      expect(role(name), name).toMatchObject(expected);
    }
    if (db.kind === 'server') {
      // The server run's cluster is shaped like hosted: supabase_admin is the superuser,
      // `postgres` is not (PGlite has only `postgres`, its superuser).
      expect(role('supabase_admin')).toMatchObject({ rolsuper: true });
      expect(role('postgres')).toEqual({
        rolname: 'postgres',
        rolcanlogin: true,
        rolinherit: true,
        rolbypassrls: true,
        rolsuper: false,
        rolcreatedb: true,
        rolcreaterole: true,
      });
    }

    const settings = await db.query<{ rolname: string; setconfig: string[] }>(
      `select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
        where s.setdatabase = 0`,
    );
    const config = (name: string) => settings.find((s) => s.rolname === name)?.setconfig ?? [];
    expect(config('anon')).toContain('statement_timeout=3s');
    expect(config('authenticated')).toContain('statement_timeout=8s');
    expect(config('supabase_auth_admin')).toEqual(
      expect.arrayContaining(['search_path=auth', 'idle_in_transaction_session_timeout=60000']),
    );

    const members = await db.query<{ role: string; member: string }>(
      `select pg_get_userbyid(roleid) as role, pg_get_userbyid(member) as member from pg_auth_members
        where pg_get_userbyid(member) in ('authenticator', 'postgres')`,
    );
    const of = (member: string) => members.filter((m) => m.member === member).map((m) => m.role);
    expect(of('authenticator')).toEqual(
      expect.arrayContaining(['anon', 'authenticated', 'service_role']),
    );
    expect(of('postgres')).toEqual(
      expect.arrayContaining(['anon', 'authenticated', 'service_role']),
    );
    // Revoked on hosted (20240319072844, 20250421084701): postgres cannot act as GoTrue.
    expect(of('postgres')).not.toContain('supabase_auth_admin');
  });

  it('supabase_auth_admin resolves unqualified names in auth and has no rights on public objects', async () => {
    const [where] = await db.asAuthAdmin((tx) =>
      tx.query<{ user: string; path: string; users: string }>(
        `select current_user as user, current_setting('search_path') as path,
                (select relnamespace::regnamespace::text || '.' || relname from pg_class
                  where oid = 'users'::regclass) as users`,
      )
    );
    expect(where).toEqual({ user: 'supabase_auth_admin', path: 'auth', users: 'auth.users' });

    // Created as a migration creates them: by `postgres`.
    await db.exec(`set role postgres;
                   create table if not exists public.stand_in_probe (id int);
                   create or replace function public.stand_in_probe_fn() returns int
                     language sql as 'select 1';
                   revoke execute on function public.stand_in_probe_fn() from public;
                   reset role;`);
    // The Postgres-function hooks' migration grants it USAGE on schema public
    // (docs/reference/auth-hooks.md#postgres-function-hooks), and nothing else: a table or a
    // function that was not granted to it stays out of reach (the classic "Database error saving
    // new user" when a trigger forgets this).
    expect(await sqlState(db.asAuthAdmin((tx) => tx.query('select * from public.stand_in_probe'))))
      .toBe('42501');
    expect(await sqlState(db.asAuthAdmin((tx) => tx.query('select public.stand_in_probe_fn()'))))
      .toBe('42501');
    // An unqualified name does not find a public table at all.
    expect(await sqlState(db.asAuthAdmin((tx) => tx.query('select * from stand_in_probe'))))
      .toBe('42P01');
  });

  it('new public functions are executable by the API roles, new tables are not granted', async () => {
    await db.exec(`set role postgres;
                   create table if not exists public.stand_in_probe (id int);
                   create or replace function public.stand_in_probe_fn() returns int
                     language sql as 'select 1';
                   reset role;`);
    const [row] = await db.query<{ t: boolean; f: boolean; usage: boolean }>(
      `select has_table_privilege('authenticated', 'public.stand_in_probe', 'SELECT') as t,
              has_function_privilege('anon', 'public.stand_in_probe_fn()', 'EXECUTE') as f,
              has_schema_privilege('service_role', 'public', 'USAGE') as usage`,
    );
    expect(row).toEqual({ t: false, f: true, usage: true });
    expect(
      await sqlState(db.asServiceRole((tx) => tx.query('select * from public.stand_in_probe'))),
    )
      .toBe('42501');
  });
});

describe('PostgREST requests', () => {
  it('auth.uid(), auth.role(), auth.email() and auth.jwt() read request.jwt.claims', async () => {
    const user = await signUpUser(db, 'claims');
    const [row] = await db.asUser(
      user.id,
      (tx) =>
        tx.query<{ uid: string; role: string; email: string; aud: string; who: string }>(
          `select auth.uid()::text as uid, auth.role() as role, auth.email() as email,
                  auth.jwt() ->> 'aud' as aud, current_user as who`,
        ),
      { email: user.email },
    );
    expect(row).toEqual({
      uid: user.id,
      role: 'authenticated',
      email: user.email,
      aud: 'authenticated',
      who: 'authenticated',
    });
    // The legacy per-claim setting wins, as in the real functions.
    const [legacy] = await db.asAnon((tx) =>
      tx.query<{ uid: string | null; role: string }>(
        `select set_config('request.jwt.claim.sub', '${user.id}', true), auth.uid()::text as uid,
                auth.role() as role`,
      )
    );
    expect(legacy).toMatchObject({ uid: user.id, role: 'anon' });
    // Inside GoTrue's own transaction nothing is set.
    const [inside] = await db.asAuthAdmin((tx) =>
      tx.query<{ uid: string | null; jwt: unknown }>('select auth.uid() as uid, auth.jwt() as jwt')
    );
    expect(inside).toEqual({ uid: null, jwt: null });
  });

  it('authenticated and anon see no auth.users row; the service role bypasses RLS', async () => {
    const user = await signUpUser(db, 'rls');
    await db.exec('grant select on auth.users to authenticated, anon, service_role');
    try {
      const mine = await db.asUser(user.id, (tx) => tx.query('select id from auth.users'));
      expect(mine).toEqual([]);
      expect(await db.asAnon((tx) => tx.query('select id from auth.users'))).toEqual([]);
      const all = await db.asServiceRole((tx) =>
        tx.query<{ id: string }>('select id from auth.users where id = $1', [user.id])
      );
      expect(all).toEqual([{ id: user.id }]);
    } finally {
      await db.exec('revoke select on auth.users from authenticated, anon, service_role');
    }
  });
});

describe('GoTrue statement sequences', () => {
  it('email sign-up, confirmation on and off', async () => {
    const email = `Mixed.Case-${uid()}@Example.com`;
    const pending = await gotrue.signUpEmail(db, {
      email,
      autoconfirm: false,
      data: { role: 'artist' },
    });
    expect(pending).toMatchObject({
      email: email.toLowerCase(),
      role: 'authenticated',
      aud: 'authenticated',
      email_confirmed_at: null,
      confirmed_at: null,
      is_anonymous: false,
      raw_app_meta_data: { provider: 'email', providers: ['email'] },
    });
    expect(pending.raw_user_meta_data).toMatchObject({
      role: 'artist',
      email: email.toLowerCase(),
      sub: pending.id,
    });
    expect(pending.confirmation_token).toMatch(/^[0-9a-f]{56}$/);
    expect(pending.encrypted_password).toMatch(/^\$2a\$10\$.{53}$/);

    const confirmed = await signUpUser(db, 'auto');
    expect(confirmed.email_confirmed_at).toBeInstanceOf(Date);
    expect(confirmed.confirmed_at).toEqual(confirmed.email_confirmed_at);
    expect(confirmed.raw_user_meta_data).toMatchObject({ email_verified: true });
    const identities = await db.query<{ provider: string; provider_id: string; email: string }>(
      'select provider, provider_id, email from auth.identities where user_id = $1',
      [confirmed.id],
    );
    expect(identities).toEqual([{
      provider: 'email',
      provider_id: confirmed.id,
      email: confirmed.email,
    }]);
  });

  it('phone and anonymous sign-ups have no email', async () => {
    const phone = await gotrue.signUpPhone(db, { phone: '+46 70 123 45 67', autoconfirm: true });
    expect(phone).toMatchObject({
      email: null,
      phone: '46701234567',
      raw_app_meta_data: { provider: 'phone' },
    });
    expect(phone.phone_confirmed_at).toBeInstanceOf(Date);

    const anon = await gotrue.signUpAnonymous(db);
    expect(anon).toMatchObject({
      email: null,
      phone: null,
      is_anonymous: true,
      role: 'authenticated',
      raw_app_meta_data: {},
    });
    const [count] = await db.query<{ n: number }>(
      'select count(*)::int as n from auth.identities where user_id = $1',
      [anon.id],
    );
    expect(count?.n).toBe(0);
  });

  it('OAuth: Google and GitHub claims, then a re-login that merges them', async () => {
    const google = await gotrue.signInOAuth(db, {
      provider: 'google',
      claims: gotrue.googleClaims({ email: `G-${uid()}@gmail.com`, name: 'Grace Hopper' }),
    });
    expect(google.raw_app_meta_data).toEqual({ provider: 'google', providers: ['google'] });
    expect(google.raw_user_meta_data).toMatchObject({
      full_name: 'Grace Hopper',
      name: 'Grace Hopper',
      iss: 'https://accounts.google.com',
    });
    expect(google.email).toBe(google.email?.toLowerCase());
    expect(google.email_confirmed_at).toBeInstanceOf(Date);

    const claims = gotrue.githubClaims({
      email: `octo-${uid()}@example.com`,
      name: null,
      userName: 'octo',
    });
    const github = await gotrue.signInOAuth(db, { provider: 'github', claims });
    expect(github.raw_user_meta_data).toMatchObject({
      user_name: 'octo',
      preferred_username: 'octo',
    });
    expect(github.raw_user_meta_data).not.toHaveProperty('name');

    const again = await gotrue.signInOAuth(db, {
      provider: 'github',
      claims: { ...claims, user_name: 'octo2' },
    });
    expect(again.id).toBe(github.id);
    expect(again.raw_user_meta_data).toMatchObject({ user_name: 'octo2' });
    expect(again.last_sign_in_at?.getTime()).toBeGreaterThanOrEqual(
      github.last_sign_in_at?.getTime() ?? 0,
    );
  });

  it('invite, admin createUser with app_metadata written after the insert', async () => {
    const invited = await gotrue.invite(db, { email: `inv-${uid()}@example.com` });
    expect(invited.invited_at).toBeInstanceOf(Date);
    expect(invited.email_confirmed_at).toBeNull();

    await db.exec(`create table if not exists public.stand_in_insert_seen (id uuid, app jsonb);
      create or replace function public.stand_in_capture() returns trigger language plpgsql
        security definer set search_path = '' as $$
      begin
        insert into public.stand_in_insert_seen values (new.id, new.raw_app_meta_data);
        return new;
      end $$;
      drop trigger if exists stand_in_capture on auth.users;
      create trigger stand_in_capture after insert on auth.users
        for each row execute function public.stand_in_capture();`);
    try {
      const admin = await gotrue.adminCreateUser(db, {
        email: `ADMIN-${uid()}@example.com`,
        password: 'secret',
        app_metadata: { role: 'admin' },
        user_metadata: { full_name: 'Ad Min' },
        email_confirm: true,
      });
      expect(admin.raw_app_meta_data).toEqual({
        provider: 'email',
        providers: ['email'],
        role: 'admin',
      });
      expect(admin.email_confirmed_at).toBeInstanceOf(Date);
      const [seen] = await db.query<{ app: Record<string, unknown> }>(
        'select app from public.stand_in_insert_seen where id = $1',
        [admin.id],
      );
      // What an INSERT trigger sees: not the caller's app_metadata yet (auth#975).
      expect(seen?.app).toEqual({ provider: 'email', providers: ['email'] });
    } finally {
      await db.exec('drop trigger if exists stand_in_capture on auth.users');
    }
  });

  it('metadata update, email change, sign-in and delete', async () => {
    const user = await signUpUser(db, 'life', { data: { a: 1, b: 2 } });
    const updated = await gotrue.updateUserMetadata(db, user.id, { b: null, c: 3 });
    expect(updated.raw_user_meta_data).toMatchObject({ a: 1, c: 3 });
    expect(updated.raw_user_meta_data).not.toHaveProperty('b');

    const requested = await gotrue.changeEmail(db, user.id, `NEW-${uid()}@example.com`, {
      confirm: false,
    });
    expect(requested.email).toBe(user.email);
    expect(requested.email_change).toMatch(/^new-/);
    const changed = await gotrue.changeEmail(db, user.id, requested.email_change ?? '');
    expect(changed).toMatchObject({ email: requested.email_change, email_change: '' });

    const before = await db.query<{ raw_user_meta_data: unknown; email: string }>(
      'select raw_user_meta_data, email from auth.users where id = $1',
      [user.id],
    );
    const signedIn = await gotrue.signIn(db, user.id);
    expect(signedIn.last_sign_in_at).toBeInstanceOf(Date);
    expect(signedIn.raw_user_meta_data).toEqual(before[0]?.raw_user_meta_data);

    const deleted = await gotrue.deleteUser(db, user.id);
    expect(deleted.id).toBe(user.id);
    const [left] = await db.query<{ users: number; identities: number }>(
      `select (select count(*) from auth.users where id = $1)::int as users,
              (select count(*) from auth.identities where user_id = $1)::int as identities`,
      [user.id],
    );
    expect(left).toEqual({ users: 0, identities: 0 });
  });
});

describe.runIf(process.env.DATABASE_URL)('server connections', () => {
  it('GoTrue logs in as supabase_auth_admin; connect() opens separate sessions', async () => {
    if (db.kind !== 'server') throw new Error('expected the server harness');
    const [who] = await db.asAuthAdmin((tx) =>
      tx.query<{ user: string; session: string; timeout: string }>(
        `select current_user as user, session_user as session,
                current_setting('idle_in_transaction_session_timeout') as timeout`,
      )
    );
    expect(who).toEqual({
      user: 'supabase_auth_admin',
      session: 'supabase_auth_admin',
      timeout: '1min',
    });
    const other = db.connect();
    const [pid] = await other<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const [mine] = await db.query<{ pid: number }>('select pg_backend_pid() as pid');
    expect(pid?.pid).not.toBe(mine?.pid);
    await other.end();
  });
});
