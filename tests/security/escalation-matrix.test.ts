// The escalation matrix: for each role a request can run as (anon, authenticated, service_role,
// and Auth's own supabase_auth_admin), what it can do to every table, sequence and function in
// public and user_sync, read from the catalog AND tried for real, against an explicit expected
// table. Objects are enumerated from pg_class/pg_proc, so one added later without a row here
// fails; a row whose object does not exist (yet) is skipped. Then every path to a role, tried.
// (tests/db/security.test.ts holds the single-path tests this builds on.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DbClient, signUpUser, uid, useTestDb } from '../helpers/db.ts';
import { adminCreateUser, type AuthUser, updateUserMetadata } from '../helpers/gotrue.ts';
import {
  afterUserCreatedBody,
  type AuthUserRow,
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  hookHeaders,
} from '../helpers/supabase-auth.ts';
import {
  type AppServer,
  fullEnv,
  gatewayFor,
  httpClient,
  SECRETS,
  startAppServer,
  whileServing,
} from './harness.ts';
import type { Gateway } from '../../shared/gateway.ts';
import { PROTECTED_PATHS } from '../function/fakes.ts';

const ROLES = ['anon', 'authenticated', 'service_role', 'supabase_auth_admin'] as const;
type Role = (typeof ROLES)[number];
type TablePriv = 'select' | 'insert' | 'update' | 'delete';

/**
 * What each role may do to each table. `update` may list columns (a column grant). Anything
 * not listed is denied. Tables in user_sync are unreachable (no schema usage) for every role.
 */
const TABLES: Record<string, Partial<Record<Role, { [P in TablePriv]?: true | string[] }>>> = {
  'public.users': {
    authenticated: { select: true, update: ['full_name', 'avatar_url'] },
    service_role: { select: true, insert: true, update: true, delete: true },
  },
  'public.user_sync_audit': { service_role: { select: true } },
  'user_sync.roles': {},
  'user_sync.sync_failures': {},
  'user_sync.audit_settings': {},
  'user_sync.mapped': {},
  'user_sync.role_lists': {},
  'user_sync.releases': {},
};

/** Sequences: no API role may read or move one (the audit ids are written by the sync only). */
const SEQUENCES: Record<string, Role[]> = {
  'public.user_sync_audit_id_seq': [],
};

/** Who may execute each function (the owner, the migration role, always may). */
const FUNCTIONS: Record<string, Role[]> = {
  'public.sync_user(uuid,text,jsonb)': ['service_role'],
  'public.resync_users(boolean,uuid[],integer,uuid)': ['service_role'],
  // For a signed-in user only (Supabase's default privileges also give it to the service role,
  // which the migration takes back: it has no user id to sync).
  'public.sync_my_user()': ['authenticated'],
  // The definer behind it, in a schema the Data API does not expose.
  'user_sync_api.sync_my_user()': ['authenticated'],
  'public.hook_custom_access_token(jsonb)': ['supabase_auth_admin'],
  // service_role too: the HTTP before-user-created hook asks the same rule (it writes nothing).
  'public.hook_before_user_created(jsonb)': ['supabase_auth_admin', 'service_role'],
  'user_sync.token_role(uuid,jsonb)': [],
  'user_sync.plan(uuid,uuid,uuid[])': [],
  'user_sync.record_failure(uuid,text,text,text)': [],
  'user_sync.on_auth_user_change()': [],
  'user_sync.on_users_write()': [],
  'user_sync.on_audit_settings_change()': [],
  'user_sync.orphans_possible()': [],
  'user_sync.add_counts(jsonb,jsonb)': [],
  'user_sync.write_batch(uuid[],uuid[])': [],
  'user_sync.on_roles_change()': [],
  'user_sync.sync_users(uuid,uuid,uuid[],boolean,text)': [],
  'user_sync.remove_orphans(uuid,uuid,uuid[],boolean,text)': [],
  'user_sync.sync_one(uuid,text,boolean)': [],
  'user_sync.audit_enabled()': [],
  'user_sync.prune_audit(interval)': [],
};

const db = useTestDb();
let alice: AuthUser;
let bob: AuthUser;
let admin: AuthUser;
let fns: Array<{ sig: string; oid: number; args: string[]; trigger: boolean }> = [];
let tables: Array<{ name: string; columns: string[] }> = [];
let sequences: string[] = [];

beforeAll(async () => {
  alice = await signUpUser(db, 'alice', { data: { full_name: 'Alice', role: 'artist' } });
  bob = await signUpUser(db, 'bob');
  admin = await adminCreateUser(db, {
    email: `admin-${uid()}@example.com`,
    email_confirm: true,
    app_metadata: { role: 'admin' },
  });
  fns = await db.query(`
    select p.pronamespace::regnamespace::text || '.' || p.proname || '(' ||
             coalesce((select string_agg(format_type(t, null), ',' order by i)
                         from unnest(p.proargtypes) with ordinality a(t, i)), '') || ')' as sig,
           p.oid::int as oid,
           coalesce((select array_agg(format_type(t, null) order by i)
                       from unnest(p.proargtypes) with ordinality a(t, i)), '{}') as args,
           p.prorettype = 'trigger'::regtype as trigger
      from pg_proc p
     where p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace, 'user_sync_api'::regnamespace)
     order by 1`);
  // format_type spells some types long ("boolean", "integer", "uuid[]"); the expected table
  // uses the same spelling without spaces after commas.
  fns = fns.map((f) => ({ ...f, sig: f.sig.replaceAll(', ', ',') }));
  tables = await db.query(`
    select c.relnamespace::regnamespace::text || '.' || c.relname as name,
           array_agg(a.attname::text order by a.attnum) as columns
      from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
       and c.relkind in ('r', 'p', 'v', 'm', 'f')
     group by 1 order by 1`);
  sequences = (await db.query<{ name: string }>(`
    select c.relnamespace::regnamespace::text || '.' || c.relname as name from pg_class c
     where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace) and c.relkind = 'S'
     order by 1`)).map((r) => r.name);
}, 120_000);

/** A transaction as `role` runs one (PostgREST for the API roles, as Alice; GoTrue's own). */
const as = <T>(role: Role, fn: (tx: DbClient) => Promise<T>) => db.as(role, fn, alice.id);

/** Runs each statement in a savepoint and returns its SQLSTATE, or 'ok'. Writes nothing. */
async function tryEach(role: Role, statements: string[]): Promise<string[]> {
  return await as(role, async (tx) => {
    const out: string[] = [];
    for (const sql of statements) {
      await tx.exec('savepoint probe');
      try {
        await tx.query(sql);
        out.push('ok');
      } catch (err) {
        out.push(String((err as { code?: string }).code ?? 'error'));
      }
      await tx.exec('rollback to savepoint probe');
    }
    // Whatever happened, nothing from this transaction stays.
    throw Object.assign(new Error('rollback'), { out });
  }).catch((err: { out?: string[] }) => {
    if (!err.out) throw err;
    return err.out;
  });
}

const q = (name: string) => name.split('.').map((p) => `"${p}"`).join('.');

describe('the expected tables cover every object', () => {
  it('every table, sequence and function in public and user_sync has a row in the expected table', () => {
    expect(tables.map((t) => t.name).filter((t) => !(t in TABLES))).toEqual([]);
    expect(sequences.filter((s) => !(s in SEQUENCES))).toEqual([]);
    expect(fns.map((f) => f.sig).filter((s) => !(s in FUNCTIONS))).toEqual([]);
  });

  // And the other way: an expected row whose object is gone would only skip its checks.
  it('every row of the expected tables names an object that exists', () => {
    const names = new Set([...tables.map((t) => t.name), ...sequences, ...fns.map((f) => f.sig)]);
    expect(
      [...Object.keys(TABLES), ...Object.keys(SEQUENCES), ...Object.keys(FUNCTIONS)].filter((k) =>
        !names.has(k)
      ),
    ).toEqual([]);
  });

  it('no function or table in public and user_sync grants anything to PUBLIC', async () => {
    const rows = await db.query(`
      select p.oid::regprocedure::text as object, a.privilege_type
        from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
       where p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace, 'user_sync_api'::regnamespace) and a.grantee = 0
      union all
      select c.oid::regclass::text, a.privilege_type
        from pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
       where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace) and a.grantee = 0`);
    expect(rows).toEqual([]);
  });

  it('RLS is on for every table in public and user_sync', async () => {
    const rows = await db.query(`
      select c.oid::regclass::text as table from pg_class c
       where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
         and c.relkind in ('r', 'p') and not c.relrowsecurity`);
    expect(rows).toEqual([]);
  });

  it('every security definer function in public and user_sync pins search_path to pg_catalog, pg_temp', async () => {
    const rows = await db.query<{ fn: string; config: string[] | null }>(`
      select p.oid::regprocedure::text as fn, p.proconfig as config from pg_proc p
       where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace, 'user_sync_api'::regnamespace)`);
    expect(rows.length).toBeGreaterThan(0);
    expect(
      rows.filter((r) => !(r.config ?? []).includes('search_path=pg_catalog, pg_temp')).map((r) =>
        r.fn
      ),
    ).toEqual([]);
  });
});

for (const role of ROLES) {
  describe(`${role}: tables`, () => {
    for (const name of Object.keys(TABLES)) {
      it(`${role} on ${name}: select/insert/update/delete as expected (catalog and real statements)`, async (ctx) => {
        const table = tables.find((t) => t.name === name);
        if (!table) return ctx.skip();
        const want = TABLES[name]![role] ?? {};
        const col = (c: string) => `"${c}"`;
        const statements = [
          `select count(*) from ${q(name)}`,
          // OVERRIDING / DEFAULT: an identity column refuses other values (428C9) before any
          // privilege check, which would hide the answer this is after.
          ...table.columns.map((c) =>
            `insert into ${q(name)} (${col(c)}) overriding system value select null where false`
          ),
          ...table.columns.map((c) => `update ${q(name)} set ${col(c)} = default where false`),
          `delete from ${q(name)} where false`,
        ];
        const got = await tryEach(role, statements);
        const n = table.columns.length;
        const allowedCols = (p: TablePriv) => {
          const w = want[p];
          return w === true ? table.columns : (w ?? []);
        };
        const observed = {
          select: got[0] === 'ok',
          insert: table.columns.filter((_, i) => got[1 + i] === 'ok'),
          update: table.columns.filter((_, i) => got[1 + n + i] === 'ok'),
          delete: got[1 + 2 * n] === 'ok',
        };
        expect(observed).toEqual({
          select: want.select === true,
          insert: allowedCols('insert'),
          update: allowedCols('update'),
          delete: want.delete === true,
        });
        // Every refusal is a permission error, not some other failure.
        expect(got.filter((g) => g !== 'ok' && g !== '42501')).toEqual([]);
      });
    }

    // Supabase's default privileges grant the API roles every new sequence in public: anon
    // could setval() the audit ids to their maximum, after which every audited sync fails.
    it(
      `${role}: sequences in public and user_sync cannot be read or moved unless expected`,
      async (ctx) => {
        if (sequences.length === 0) return ctx.skip();
        const statements = sequences.flatMap((s) => [
          `select last_value from ${q(s)}`,
          `select nextval('${s}')`,
          // Sequences ignore rollback: set it to where it already is.
          `select setval('${s}', (select last_value from ${q(s)}), (select is_called from ${
            q(s)
          }))`,
        ]);
        const got = await tryEach(role, statements);
        const observed = Object.fromEntries(
          sequences.map((s, i) => [s, got.slice(3 * i, 3 * i + 3).map((g) => g === 'ok')]),
        );
        const expected = Object.fromEntries(
          sequences.map((s) => {
            const ok = (SEQUENCES[s] ?? []).includes(role);
            return [s, [ok, ok, ok]];
          }),
        );
        expect(observed).toEqual(expected);
      },
    );
  });

  describe(`${role}: functions`, () => {
    for (const [sig, allowed] of Object.entries(FUNCTIONS)) {
      it(`${role} ${allowed.includes(role) ? 'may' : 'may not'} execute ${sig}`, async (ctx) => {
        const fn = fns.find((f) => f.sig === sig);
        if (!fn) return ctx.skip();
        const [catalog] = await db.query<{ ok: boolean }>(
          `select has_function_privilege($1, $2::oid, 'EXECUTE')
              and has_schema_privilege($1, (select pronamespace from pg_proc where oid = $2::oid), 'USAGE') as ok`,
          [role, fn.oid],
        );
        expect(catalog!.ok).toBe(allowed.includes(role));
        if (!allowed.includes(role) && !fn.trigger) {
          // Tried for real with null arguments: refused before the body runs.
          const name = sig.slice(0, sig.indexOf('('));
          const args = fn.args.map((t) => `null::${t}`).join(', ');
          const [code] = await tryEach(role, [`select ${q(name)}(${args})`]);
          expect(code).toBe('42501');
        }
      });
    }
  });
}

// ------------------------------------------------------------------ row-level: self and other

describe('public.users rows: self and other', () => {
  const rowOf = (id: string) => db.appRow(id, '*, xmin::text as xmin');

  it('authenticated (self) reads only their own row and edits only its profile columns', async () => {
    const before = await rowOf(bob.id);
    const out = await db.asUser(alice.id, async (tx) => ({
      seen: (await tx.query<{ id: string }>('select id from public.users')).map((r) => r.id),
      mine: await tx.query(
        `update public.users set full_name = 'Alice M.' where id = $1 returning id`,
        [alice.id],
      ),
      other: await tx.query(
        `update public.users set full_name = 'pwned' where id = $1 returning id`,
        [bob.id],
      ),
      otherDelete: await tx.query('select count(*)::int as n from public.users where id = $1', [
        bob.id,
      ]),
    }));
    expect(out).toEqual({
      seen: [alice.id],
      mine: [{ id: alice.id }],
      other: [],
      otherDelete: [{ n: 0 }],
    });
    expect(await rowOf(bob.id)).toEqual(before);
  });

  it('service_role reads every row; anon and supabase_auth_admin read none (permission denied)', async () => {
    const all = await db.asServiceRole((tx) =>
      tx.query<{ n: number }>('select count(*)::int as n from public.users')
    );
    expect(all[0]!.n).toBeGreaterThanOrEqual(3);
    for (const role of ['anon', 'supabase_auth_admin'] as const) {
      expect(await tryEach(role, ['select id from public.users'])).toEqual(['42501']);
    }
  });
});

// ------------------------------------------------------------------ every path to a role

describe('every path to a role', () => {
  let gateway: Gateway;
  let server: AppServer;
  let client: ReturnType<typeof httpClient>;
  const roleOf = async (id: string) => (await db.appRow<{ role: string }>(id, 'role'))?.role;

  beforeAll(async () => {
    gateway = gatewayFor(db);
    server = await startAppServer(gateway);
    client = httpClient(server);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await gateway?.close?.();
  });

  /** Every sync path the project has, run for `id`: none may change the role. */
  async function syncEveryWay(id: string) {
    await db.asUser(id, (tx) => tx.query('select public.sync_my_user()'));
    await db.syncUser(id);
    await db.resyncUsers();
    const row = (await db.query<AuthUserRow>('select * from auth.users where id = $1', [id]))[0]!;
    expect((await client.hook('after-user-created', afterUserCreatedBody(row))).status).toBe(200);
    const token = await client.hook(
      'custom-access-token',
      customAccessTokenBody(id, defaultClaims(id)),
    );
    expect(token.status).toBe(200);
    return JSON.parse(token.body.toString()).claims.user_role as string;
  }

  it('sign-up metadata: asking for admin (and lookalikes) in user_metadata gives client, on every sync path', async () => {
    for (const asked of ['admin', 'Admin', 'admin ', 'ａｄｍｉｎ', 'superuser', 'service_role']) {
      const user = await signUpUser(db, 'm', { data: { role: asked } });
      expect(await syncEveryWay(user.id)).toBe('client');
      expect(await roleOf(user.id)).toBe('client');
    }
  });

  it('updateUser metadata: user_metadata.role = admin after sign-up changes nothing, on every sync path', async () => {
    const user = await signUpUser(db, 'u');
    await updateUserMetadata(db, user.id, { role: 'admin' });
    expect(await syncEveryWay(user.id)).toBe('client');
    expect(await roleOf(user.id)).toBe('client');
  });

  it('direct update: no API role but the service role can write role in public.users or app_metadata in auth.users', async () => {
    for (const role of ['anon', 'authenticated', 'supabase_auth_admin'] as const) {
      const got = await tryEach(role, [
        `update public.users set role = 'admin' where id = '${alice.id}'`,
      ]);
      expect({ role, got }).toEqual({ role, got: ['42501'] });
    }
    for (const role of ['anon', 'authenticated'] as const) {
      const got = await tryEach(role, [
        `update auth.users set raw_app_meta_data = '{"role":"admin"}' where id = '${alice.id}'`,
        `update user_sync.roles set self_assignable = true where role = 'admin'`,
      ]);
      expect({ role, got }).toEqual({ role, got: ['42501', '42501'] });
    }
    expect(await roleOf(alice.id)).toBe('artist');
  });

  it('insert: no API role but the service role can insert a public.users row or a role', async () => {
    const id = crypto.randomUUID();
    for (const role of ['anon', 'authenticated', 'supabase_auth_admin'] as const) {
      const got = await tryEach(role, [
        `insert into public.users (id, email, role) values ('${id}', 'x@example.com', 'admin')`,
        `insert into user_sync.roles (role, self_assignable) values ('root', true)`,
      ]);
      expect({ role, got }).toEqual({ role, got: ['42501', '42501'] });
    }
  });

  it('RPC: a JWT claiming admin (user_role, app_metadata.role, role) does not make sync_my_user grant it', async () => {
    const user = await signUpUser(db, 'r');
    const [out] = await db.asUser(
      user.id,
      (tx) => tx.query<{ r: { role: string } }>('select public.sync_my_user() as r'),
      { user_role: 'admin', app_metadata: { role: 'admin' }, user_metadata: { role: 'admin' } },
    );
    expect(out!.r.role).toBe('client');
    // And the privileged functions stay closed to a signed-in user, whatever the claims say.
    const got = await tryEach('authenticated', [
      `select public.sync_user('${user.id}')`,
      'select public.resync_users()',
    ]);
    expect(got).toEqual(['42501', '42501']);
    expect(await roleOf(user.id)).toBe('client');
  });

  it('hook payloads claiming a role: the answer and the row follow auth.users, never the payload', async () => {
    const user = await signUpUser(db, 'k');
    const row =
      (await db.query<AuthUserRow>('select * from auth.users where id = $1', [user.id]))[0]!;
    const forged = {
      ...row,
      raw_app_meta_data: { role: 'admin' },
      raw_user_meta_data: { role: 'admin' },
    };
    const send = async (name: string, body: string) => {
      const res = await client.hook(name, body);
      return { status: res.status, json: JSON.parse(res.body.toString()) };
    };
    expect(await send('after-user-created', afterUserCreatedBody(forged))).toEqual({
      status: 200,
      json: {},
    });
    const token = await send(
      'custom-access-token',
      customAccessTokenBody(
        user.id,
        defaultClaims(user.id, {
          app_metadata: { role: 'admin' },
          user_metadata: { role: 'admin' },
        }),
      ),
    );
    expect(token.json.claims.user_role).toBe('client');
    const before = await send(
      'before-user-created',
      beforeUserCreatedBody({ id: crypto.randomUUID(), raw_user_meta_data: { role: 'admin' } }),
    );
    expect(before.json.error.http_code).toBe(400);
    const webhook = await client.call({
      method: 'POST',
      path: '/webhooks/auth-users',
      headers: { authorization: `Bearer ${SECRETS.webhook}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'UPDATE',
        table: 'users',
        schema: 'auth',
        record: forged,
        old_record: row,
      }),
    });
    expect(JSON.parse(webhook.body.toString())).toMatchObject({ user_id: user.id, role: 'client' });
    expect(await roleOf(user.id)).toBe('client');
  });

  it('an admin role granted through app_metadata by the service role is the one way up', async () => {
    expect(await roleOf(admin.id)).toBe('admin');
    expect(await syncEveryWay(admin.id)).toBe('admin');
  });
});

// ------------------------------------------------------------------ closed admin endpoints

describe('admin endpoints are closed when their secret is unset', () => {
  const ATTEMPTS = [
    '',
    'Bearer ',
    'Bearer null',
    'Bearer undefined',
    'Bearer false',
    `Bearer ${SECRETS.admin}`,
    `Bearer ${SECRETS.webhook}`,
  ];

  it('no secret at all: every protected route answers 503 not_configured, whatever it is sent, and writes nothing', async () => {
    const before = await db.query(
      "select md5(string_agg(u::text || u.xmin::text, ',' order by id)) as h from public.users u",
    );
    await whileServing(gatewayFor(db), {}, async (client) => {
      for (const path of PROTECTED_PATHS) {
        for (const authorization of ATTEMPTS) {
          const body = path === '/resync' ? '{}' : JSON.stringify({
            type: 'INSERT',
            table: 'users',
            schema: 'auth',
            record: { id: alice.id },
            old_record: null,
          });
          const headers: Record<string, string> = {
            ...(await hookHeaders(body, { secrets: SECRETS.hook })),
            authorization,
          };
          const res = await client.call({ method: 'POST', path, headers, body });
          expect({
            path,
            authorization,
            status: res.status,
            code: JSON.parse(res.body.toString()).error.code,
          }).toEqual({ path, authorization, status: 503, code: 'not_configured' });
        }
      }
      // Health needs no secret and says nothing else.
      const health = await client.call({ method: 'GET', path: '/health' });
      expect(Object.keys(JSON.parse(health.body.toString())).sort()).toEqual([
        'database',
        'database_ms',
        'status',
      ]);
    });
    expect(
      await db.query(
        "select md5(string_agg(u::text || u.xmin::text, ',' order by id)) as h from public.users u",
      ),
    ).toEqual(before);
  });

  it('empty or whitespace secrets count as unset: an empty bearer cannot match an empty secret', async () => {
    const env = {
      ...fullEnv,
      USER_SYNC_WEBHOOK_SECRET: '',
      USER_SYNC_ADMIN_TOKEN: '   ',
      SUPABASE_SERVICE_ROLE_KEY: '',
      SUPABASE_SECRET_KEYS: '',
    };
    await whileServing(gatewayFor(db), env, async (client) => {
      for (const path of ['/webhooks/auth-users', '/resync']) {
        for (const authorization of ['', 'Bearer ', 'Bearer', 'Bearer   ']) {
          const res = await client.call({
            method: 'POST',
            path,
            headers: { authorization },
            body: '{}',
          });
          expect({ path, authorization, status: res.status }).toEqual({
            path,
            authorization,
            status: 503,
          });
        }
      }
    });
  });

  it('each secret opens only its own route: the admin token is not the webhook secret and no bearer opens a hook', async () => {
    await whileServing(gatewayFor(db), { USER_SYNC_ADMIN_TOKEN: SECRETS.admin }, async (client) => {
      const withAdminToken = (path: string, body: string) =>
        client.call({
          method: 'POST',
          path,
          headers: { authorization: `Bearer ${SECRETS.admin}` },
          body,
        });
      expect((await withAdminToken('/webhooks/auth-users', '{}')).status).toBe(503);
      expect((await withAdminToken('/hooks/after-user-created', '{}')).status).toBe(503);
      const resync = await withAdminToken('/resync', '{"dry_run":true}');
      expect(resync.status).toBe(200);
      expect(JSON.parse(resync.body.toString())).toMatchObject({ dry_run: true, missing: 0 });
    });
  });
});
