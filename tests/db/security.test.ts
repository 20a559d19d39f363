// Every escalation path we know of, one named test each: what a user can put in metadata, what
// a signed-in user or the anon key can do through PostgREST, what the private schema exposes,
// and whether the security definer functions can be steered by a caller's search_path.

import { beforeAll, describe, expect, it } from 'vitest';
import { type DbClient, pgError, signUpUser, uid, useTestDb } from '../helpers/db.ts';
import { adminUpdateAppMetadata, type AuthUser, updateUserMetadata } from '../helpers/gotrue.ts';

const db = useTestDb();
let alice: AuthUser;
let bob: AuthUser;

beforeAll(async () => {
  alice = await signUpUser(db, 'alice', { data: { full_name: 'Alice', role: 'artist' } });
  bob = await signUpUser(db, 'bob', { data: { full_name: 'Bob' } });
});

/** The app row with its xmin: any write shows. */
const row = (id: string) => db.appRow(id, '*, xmin::text as xmin');

const roleOf = async (id: string) => (await row(id))?.role;

describe('role escalation through metadata', () => {
  it('a sign-up asking for admin in user_metadata gets client', async () => {
    const mallory = await signUpUser(db, 'mallory', { data: { role: 'admin' } });
    expect(mallory.raw_user_meta_data).toMatchObject({ role: 'admin' });
    expect(await roleOf(mallory.id)).toBe('client');
  });

  it('a later user_metadata role change (updateUserMetadata) is ignored', async () => {
    const user = await signUpUser(db, 'later');
    const before = await row(user.id);
    await updateUserMetadata(db, user.id, { role: 'admin' });
    // Even a self-assignable role is only chosen at sign-up.
    await updateUserMetadata(db, user.id, { role: 'producer' });
    expect(await row(user.id)).toEqual(before);
  });

  it('an app_metadata role change by an admin is honoured: promote and demote', async () => {
    const user = await signUpUser(db, 'promo');
    expect(await roleOf(user.id)).toBe('client');
    for (const role of ['admin', 'producer', 'client']) {
      await adminUpdateAppMetadata(db, user.id, { role });
      expect(await roleOf(user.id)).toBe(role);
    }
  });

  it('an unknown role in app_metadata changes nothing', async () => {
    const user = await signUpUser(db, 'unknown', { data: { role: 'artist' } });
    const before = await row(user.id);
    await adminUpdateAppMetadata(db, user.id, { role: 'superuser' });
    expect(await row(user.id)).toEqual(before);
  });
});

describe('a signed-in user through PostgREST', () => {
  for (
    const [column, value] of [
      ['role', 'admin'],
      ['email', 'stolen@example.com'],
      ['id', '00000000-0000-0000-0000-000000000001'],
    ] as const
  ) {
    it(`cannot update ${column} of their own row (permission denied)`, async () => {
      const before = await row(alice.id);
      const error = await pgError(
        db.asUser(
          alice.id,
          (tx) =>
            tx.query(`update public.users set ${column} = $2 where id = $1`, [alice.id, value]),
        ),
      );
      expect(error).toEqual({ code: '42501', message: 'permission denied for table users' });
      expect(await row(alice.id)).toEqual(before);
    });
  }

  it('can update full_name and avatar_url of their own row', async () => {
    const updated = await db.asUser(alice.id, (tx) =>
      tx.query(
        `update public.users set full_name = 'Alice A.', avatar_url = 'https://a.example/a.png'
          where id = $1 returning id, full_name, avatar_url, role`,
        [alice.id],
      ));
    expect(updated).toEqual([{
      id: alice.id,
      full_name: 'Alice A.',
      avatar_url: 'https://a.example/a.png',
      role: 'artist',
    }]);
    expect(await row(alice.id)).toMatchObject({
      full_name: 'Alice A.',
      avatar_url: 'https://a.example/a.png',
    });
  });

  it("cannot update another user's row (0 rows)", async () => {
    const before = await row(bob.id);
    const updated = await db.asUser(
      alice.id,
      (tx) =>
        tx.query(`update public.users set full_name = 'Hacked' where id = $1 returning id`, [
          bob.id,
        ]),
    );
    expect(updated).toEqual([]);
    const everyone = await db.asUser(
      alice.id,
      (tx) => tx.query(`update public.users set full_name = 'Hacked' returning id`),
    );
    expect(everyone).toEqual([{ id: alice.id }]);
    expect(await row(bob.id)).toEqual(before);
  });

  it('cannot insert a row', async () => {
    const id = crypto.randomUUID();
    const error = await pgError(
      db.asUser(
        id,
        (tx) =>
          tx.query(
            `insert into public.users (id, email, role) values ($1, 'x@example.com', 'admin')`,
            [
              id,
            ],
          ),
      ),
    );
    expect(error).toEqual({ code: '42501', message: 'permission denied for table users' });
    expect(await row(id)).toBeUndefined();
  });

  it('cannot delete a row, not even their own', async () => {
    const error = await pgError(
      db.asUser(alice.id, (tx) => tx.query('delete from public.users where id = $1', [alice.id])),
    );
    expect(error).toEqual({ code: '42501', message: 'permission denied for table users' });
    expect(await row(alice.id)).toBeDefined();
  });

  it('sees only their own row', async () => {
    const total = await db.query<{ n: number }>('select count(*)::int as n from public.users');
    expect(total[0]!.n).toBeGreaterThan(2);
    const seen = await db.asUser(bob.id, (tx) => tx.query('select id, email from public.users'));
    expect(seen).toEqual([{ id: bob.id, email: bob.email }]);
  });

  for (const fn of ['sync_user', 'resync_users'] as const) {
    it(`cannot execute ${fn}`, async () => {
      const call = fn === 'sync_user'
        ? (tx: DbClient) => tx.query('select public.sync_user($1)', [alice.id])
        : (tx: DbClient) => tx.query('select public.resync_users()');
      const error = await pgError(db.asUser(alice.id, call));
      expect(error).toEqual({ code: '42501', message: `permission denied for function ${fn}` });
    });
  }
});

describe('sync_my_user', () => {
  it('heals the caller’s own deleted row and returns {user_id, action, role}', async () => {
    const carol = await signUpUser(db, 'carol', { data: { full_name: 'Carol', role: 'producer' } });
    const before = await row(carol.id);
    await db.query('delete from public.users where id = $1', [carol.id]);
    const [result] = await db.asUser(
      carol.id,
      (tx) => tx.query<{ r: unknown }>('select public.sync_my_user() as r'),
    );
    expect(result?.r).toEqual({ user_id: carol.id, action: 'inserted', role: 'producer' });
    const healed = await row(carol.id);
    expect({ ...healed, updated_at: null, xmin: null }).toEqual({
      ...before,
      updated_at: null,
      xmin: null,
    });
    const [again] = await db.asUser(
      carol.id,
      (tx) => tx.query<{ r: unknown }>('select public.sync_my_user() as r'),
    );
    expect(again?.r).toEqual({ user_id: carol.id, action: 'unchanged', role: 'producer' });
  });

  it('without a user id raises 42501 with its sentence', async () => {
    const error = await pgError(
      db.asUser(alice.id, (tx) => tx.query('select public.sync_my_user()'), { sub: undefined }),
    );
    expect(error).toEqual({
      code: '42501',
      message: 'sync_my_user() needs a signed-in user: the request carries no user id.',
    });
  });
});

describe('anon (the publishable key)', () => {
  it('sees nothing: no privilege on public.users', async () => {
    const error = await pgError(db.asAnon((tx) => tx.query('select * from public.users')));
    expect(error).toEqual({ code: '42501', message: 'permission denied for table users' });
  });

  for (const fn of ['sync_user', 'resync_users', 'sync_my_user'] as const) {
    it(`cannot execute ${fn}`, async () => {
      const sql = {
        sync_user: `select public.sync_user('${alice.id}')`,
        resync_users: 'select public.resync_users(p_dry_run => true)',
        sync_my_user: 'select public.sync_my_user()',
      }[fn];
      const error = await pgError(db.asAnon((tx) => tx.query(sql)));
      expect(error).toEqual({ code: '42501', message: `permission denied for function ${fn}` });
    });
  }
});

describe('the service role', () => {
  it('can execute sync_user and resync_users', async () => {
    expect(await db.syncUser(bob.id)).toEqual({
      user_id: bob.id,
      action: 'unchanged',
      role: 'client',
      user_role: 'client',
    });
    expect(await db.resyncUsers('p_dry_run => true')).toMatchObject({
      dry_run: true,
      scope: 'all',
      missing: 0,
      stale: 0,
      done: true,
    });
  });
});

describe('the private schema user_sync', () => {
  for (const role of ['anon', 'authenticated', 'service_role'] as const) {
    it(`is unreachable for ${role}`, async () => {
      for (
        const sql of [
          'select * from user_sync.roles',
          'select * from user_sync.sync_failures',
          `select * from user_sync.plan('${alice.id}', '${alice.id}')`,
          `select user_sync.sync_users('${alice.id}', '${alice.id}', null, false, 'x')`,
          `select user_sync.sync_one('${alice.id}', 'x')`,
          `insert into user_sync.roles (role, self_assignable) values ('evil', true)`,
        ]
      ) {
        const error = await pgError(db.as(role, (tx) => tx.query(sql), alice.id));
        expect({ sql, ...error }).toEqual({
          sql,
          code: '42501',
          message: 'permission denied for schema user_sync',
        });
      }
      const [privileges] = await db.query(
        `select has_schema_privilege($1, 'user_sync', 'USAGE') as usage,
                has_table_privilege($1, 'user_sync.roles', 'SELECT') as roles,
                has_table_privilege($1, 'user_sync.sync_failures', 'SELECT') as failures`,
        [role],
      );
      expect(privileges).toEqual({ usage: false, roles: false, failures: false });
    });
  }
});

describe('catalog checks', () => {
  it('RLS is enabled on public.users and the user_sync tables', async () => {
    const rows = await db.query(
      `select c.relnamespace::regnamespace::text || '.' || c.relname as table, c.relrowsecurity as rls from pg_class c
        where c.relkind = 'r' and c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
        order by 1`,
    );
    expect(rows).toEqual([
      { table: 'public.user_sync_audit', rls: true },
      { table: 'public.users', rls: true },
      { table: 'user_sync.audit_settings', rls: true },
      { table: 'user_sync.releases', rls: true },
      { table: 'user_sync.role_lists', rls: true },
      { table: 'user_sync.roles', rls: true },
      { table: 'user_sync.sync_failures', rls: true },
    ]);
  });

  it('every security definer function in public and user_sync pins search_path to pg_catalog, pg_temp', async () => {
    const rows = await db.query<{ fn: string; config: string[] | null }>(
      `select p.pronamespace::regnamespace::text || '.' || p.proname as fn, p.proconfig as config
         from pg_proc p
        where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace,
          'user_sync_api'::regnamespace)
        order by 1`,
    );
    expect(rows.map((r) => r.fn)).toEqual([
      'public.hook_before_user_created',
      'public.hook_custom_access_token',
      'public.resync_users',
      'public.sync_user',
      'user_sync.on_audit_settings_change',
      'user_sync.on_auth_user_change',
      'user_sync.on_users_write',
      'user_sync_api.sync_my_user',
    ]);
    for (const { fn, config } of rows) {
      expect({ fn, search_path: config?.find((c) => c.startsWith('search_path=')) }).toEqual({
        fn,
        search_path: 'search_path=pg_catalog, pg_temp',
      });
    }
  });

  it('a search_path hijack (public.* and pg_temp objects shadowing names) has no effect', async () => {
    // The bait: functions and an operator in public that shadow what the sync calls, and log
    // every call. They only win for a caller that puts public before pg_catalog.
    await db.exec(`
      create table public.hijack_log (what text not null);
      create function public.hijack(p_what text) returns void
        language sql security definer set search_path = pg_catalog
        as $$ insert into public.hijack_log (what) values (p_what) $$;
      create function public.btrim(text) returns text
        language sql security definer set search_path = pg_catalog
        as $$ select public.hijack('btrim'); select 'HIJACKED'::text $$;
      create function public.now() returns timestamptz
        language sql security definer set search_path = pg_catalog
        as $$ select public.hijack('now'); select '1999-01-01 00:00:00+00'::timestamptz $$;
      create function public.cardinality(uuid[]) returns integer
        language sql security definer set search_path = pg_catalog
        as $$ select public.hijack('cardinality'); select 0 $$;
      create function public.evil_field(jsonb, text) returns text
        language sql security definer set search_path = pg_catalog
        as $$ select public.hijack('->>'); select 'admin'::text $$;
      create operator public.->> (leftarg = jsonb, rightarg = text, function = public.evil_field);
      grant execute on all functions in schema public to anon, authenticated, service_role;
    `);
    try {
      const victim = await signUpUser(db, 'victim', {
        data: { full_name: '  Victim  ', role: 'artist' },
      });
      const expected = await row(victim.id);
      expect(expected).toMatchObject({ full_name: 'Victim', role: 'artist' });

      const hijacked = `set local search_path = pg_temp, public, pg_catalog;
        create temp table users (id uuid, role text) on commit drop;
        create temp table roles (role text, self_assignable boolean, is_default boolean) on commit drop;
        create temp table sync_failures (user_id uuid) on commit drop;
        insert into roles values ('admin', true, true);`;

      // The trap is armed: an unpinned caller gets the bait.
      const [armed] = await db.asServiceRole(async (tx) => {
        await tx.exec(hijacked);
        return await tx.query(
          `select btrim(' x ') as b, now() as t, '{"role":"client"}'::jsonb ->> 'role' as r,
                  cardinality(array[gen_random_uuid()]) as c`,
        );
      });
      expect(armed).toEqual({
        b: 'HIJACKED',
        t: new Date('1999-01-01T00:00:00Z'),
        r: 'admin',
        c: 0,
      });
      await db.exec('delete from public.hijack_log');

      // The functions, called under that search path, ignore it: the row is deleted and rebuilt
      // by sync_user, then by resync_users, and must come back exactly as before.
      await db.query('delete from public.users where id = $1', [victim.id]);
      const results = await db.asServiceRole(async (tx) => {
        await tx.exec(hijacked);
        const one = await tx.query<{ r: unknown }>('select sync_user($1) as r', [victim.id]);
        await tx.exec(`delete from public.users where id = '${victim.id}'`);
        const all = await tx.query<{ r: Record<string, unknown> }>('select resync_users() as r');
        const dry = await tx.query<{ r: Record<string, unknown> }>(
          'select resync_users(p_dry_run => true) as r',
        );
        return { one: one[0]?.r, all: all[0]?.r, dry: dry[0]?.r };
      });
      expect(results.one).toEqual({
        user_id: victim.id,
        action: 'inserted',
        role: 'artist',
        user_role: 'artist',
      });
      expect(results.all).toMatchObject({ inserted: 1, updated: 0, failed: 0 });
      expect(results.dry).toMatchObject({ missing: 0, stale: 0, orphaned: 0, failed: 0 });

      // The trigger path, from a session whose search_path prefers the bait.
      const other = crypto.randomUUID();
      await db.asSuperuser(async (tx) => {
        await tx.exec(hijacked);
        await tx.exec(`
          insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
            created_at, updated_at)
          values ('${other}', 'authenticated', '', 'other-${uid()}@example.com',
            '{"provider":"email","providers":["email"]}', '{"full_name":" Other ","role":"producer"}',
            pg_catalog.now(), pg_catalog.now());
          update auth.users set raw_user_meta_data = raw_user_meta_data || '{"x":1}'
           where id = '${other}';`);
      });

      expect(await db.query('select what from public.hijack_log')).toEqual([]);
      const rebuilt = await row(victim.id);
      expect({ ...rebuilt, updated_at: null, xmin: null }).toEqual({
        ...expected,
        updated_at: null,
        xmin: null,
      });
      expect((rebuilt!.updated_at as Date).getFullYear()).toBeGreaterThan(2000);
      expect(await row(other)).toMatchObject({ full_name: 'Other', role: 'producer' });
      expect(await db.query('select * from user_sync.sync_failures')).toEqual([]);
    } finally {
      await db.exec(`
        drop operator if exists public.->> (jsonb, text);
        drop function if exists public.evil_field(jsonb, text);
        drop function if exists public.cardinality(uuid[]);
        drop function if exists public.now();
        drop function if exists public.btrim(text);
        drop function if exists public.hijack(text);
        drop table if exists public.hijack_log;
      `);
    }
  });
});
