// Issue 12, finding 2: no security definer function can be made to run its caller's code as
// its owner through the session's temporary schema.
//
// PostgreSQL looks in pg_temp for tables and types before anything else unless the search_path
// names it, so with `search_path = ''` a caller's `pg_temp.uuid` (a domain whose CHECK calls
// the caller's own function) runs that function as the definer's owner the moment the body
// declares a uuid. Every definer function must pin `search_path = pg_catalog, pg_temp`.
//
// For every security definer function in public and user_sync, as each role allowed to call it,
// in the caller's own session and transaction: plant in pg_temp a domain over every type the
// bodies name and a view over every table name they could mean, each calling pg_temp.spy(),
// which reports current_user (a WARNING, which no rollback takes back, and a row) and tries to
// create and grant public.backdoor(). Then call the function and prove that the spy only ever
// ran as the caller, no backdoor exists, the function really ran (the session's function
// statistics) and the sync wrote the right rows. A definer function this file does not enter,
// or a role allowed to call one that no case calls it as, fails the last test.
//
// Each case gets a database and a session of its own: PL/pgSQL compiles a function once per
// session, so a function compiled before the plant was made would never see it.

import { describe, expect, it } from 'vitest';
import {
  type DbClient,
  insertAuthUser,
  keyClaims,
  postgresClient,
  preRequest,
  quoteIdent as ident,
  quoteLiteral as lit,
  type TestDb,
  uid,
  userClaims,
  useTestDb,
  withTestDb,
} from '../helpers/db.ts';

/** The API roles; a definer function any of them may execute needs a case per role. */
const API_ROLES = ['anon', 'authenticated', 'service_role', 'supabase_auth_admin'] as const;
/** A caller: an API role, or the migration role an admin uses in the SQL editor. */
type Role = (typeof API_ROLES)[number] | 'postgres';

/** The types the issue names, planted whatever the bodies say (keywords among them). */
const NAMED_TYPES: Record<string, string> = {
  uuid: 'uuid',
  text: 'text',
  jsonb: 'jsonb',
  json: 'json',
  boolean: 'bool',
  bool: 'bool',
  integer: 'int4',
  int: 'int4',
  int4: 'int4',
  smallint: 'int2',
  int2: 'int2',
  bigint: 'int8',
  int8: 'int8',
  numeric: 'numeric',
  timestamptz: 'timestamptz',
  timestamp: 'timestamp',
  interval: 'interval',
  varchar: 'varchar',
  name: 'name',
  oid: 'oid',
  regclass: 'regclass',
};

/** Table names planted whatever the catalog says. */
const NAMED_TABLES = ['users', 'roles', 'sync_failures', 'audit_settings', 'user_sync_audit'];

const ZERO = '00000000-0000-0000-0000-000000000000';

type Q = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** One session of its own, as a PostgREST or GoTrue connection has. */
interface Session {
  /** Every WARNING and NOTICE the session received. */
  readonly notices: string[];
  /** One transaction on the session. */
  tx<T>(fn: (q: Q) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

async function openSession(db: TestDb): Promise<Session> {
  const notices: string[] = [];
  if (db.kind === 'server') {
    // One connection (max 1), logging in as the superuser the way PostgREST logs in as
    // authenticator: the role comes from SET LOCAL ROLE in each transaction. Logging in as a
    // superuser lets the session count its function calls (track_functions is superuser-only).
    const sql = db.connect(undefined, {
      max: 1,
      onnotice: (n) => notices.push(String(n.message)),
    });
    await sql.unsafe(`set track_functions = 'all'`);
    return {
      notices,
      tx: <T>(fn: (q: Q) => Promise<T>) =>
        sql.begin((t) => fn(postgresClient(t).query)) as Promise<T>,
      end: () => sql.end({ timeout: 5 }),
    };
  }
  const pg = db.pglite;
  await pg.exec(`set track_functions = 'all'`);
  return {
    notices,
    tx: <T>(fn: (q: Q) => Promise<T>) =>
      pg.transaction((t) =>
        fn(async (text, params = []) =>
          (await t.query<Record<string, unknown>>(text, params, {
            onNotice: (n) => notices.push(String(n.message)),
          })).rows
        )
      ),
    end: async () => {},
  };
}

/** What PostgREST runs first in a request transaction, then the role switch. */
async function asApiRole(q: Q, role: 'authenticated' | 'service_role', userId?: string) {
  const pre = preRequest(role === 'authenticated' ? userClaims(userId!) : keyClaims(role));
  await q(pre.sql, pre.params);
}

/** GoTrue's connection: its role, its role's search_path. */
async function asAuthAdmin(q: Q) {
  await q(`set local role supabase_auth_admin`);
  await q(`set local search_path = auth`);
}

/** An admin in the SQL editor: the migration role, its role's search_path. */
async function asAdmin(q: Q) {
  await q(`set local role postgres`);
  await q(`set local search_path = "$user", public, extensions`);
}

// ---------------------------------------------------------------- the plant

interface Plant {
  /** pg_temp domain name -> the pg_catalog type it wraps. */
  types: Record<string, string>;
  /** pg_temp view name -> its column list (pg_catalog types). */
  tables: Record<string, string>;
}

/**
 * What to plant, read from the catalog as the superuser: every pg_catalog type named as a word
 * in any function body of public, user_sync or auth (auth.uid() runs inside the definers too),
 * plus the issue's list; and every relation name of those schemas, plus the issue's list.
 */
async function plantFor(db: TestDb): Promise<Plant> {
  const words = await db.query<{ typname: string }>(
    `with bodies as (
       select pg_catalog.string_agg(p.prosrc, ' ') as src from pg_catalog.pg_proc p
       where p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace,
         'auth'::regnamespace)
     )
     select t.typname::text as typname
     from pg_catalog.pg_type t, bodies b
     where t.typnamespace = 'pg_catalog'::regnamespace
       and t.typtype in ('b', 'r', 'm', 'e', 'd') and t.typname !~ '^_'
       and t.typcategory <> 'A'
       and b.src ~* ('\\m' || t.typname || '\\M')
     order by 1`,
  );
  const types: Record<string, string> = { ...NAMED_TYPES };
  for (const { typname } of words) types[typname] = typname;

  const rels = await db.query<{ relname: string; cols: string }>(
    `select distinct on (c.relname) c.relname::text as relname,
       pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname,
         case when t.typnamespace = 'pg_catalog'::regnamespace
           then 'pg_catalog.' || pg_catalog.quote_ident(t.typname) else 'pg_catalog.text' end),
         ', ' order by a.attnum) as cols
     from pg_catalog.pg_class c
     join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     join pg_catalog.pg_type t on t.oid = a.atttypid
     where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace,
       'auth'::regnamespace)
       and c.relkind in ('r', 'p', 'v', 'm', 'f')
     group by c.relnamespace, c.relname
     order by c.relname, c.relnamespace = 'public'::regnamespace desc`,
  );
  const tables: Record<string, string> = {};
  for (const { relname, cols } of rels) tables[relname] = cols;
  for (const name of NAMED_TABLES) tables[name] ??= 'id pg_catalog.uuid';
  // A view's row type takes its name: a type of the same name would collide.
  for (const name of Object.keys(tables)) delete types[name];
  return { types, tables };
}

/**
 * Plants the spy as the current role of q's transaction. Everything the plant itself needs is
 * created before the domains and names pg_catalog's types explicitly.
 */
async function plant(q: Q, p: Plant, caller: Role): Promise<void> {
  await q(`create table pg_temp.spy_log (who pg_catalog.text)`);
  await q(`grant all on table pg_temp.spy_log to public`);
  await q(
    `create function pg_temp.spy() returns pg_catalog.bool language plpgsql as $spy$
     begin
       raise warning 'spy ran as %', current_user;
       insert into pg_temp.spy_log (who) values (current_user);
       -- What an attacker would do with the owner's rights: a definer backdoor for everyone.
       if current_user <> ${lit(caller)} then
         begin
           execute 'create function public.backdoor() returns pg_catalog.text language sql '
             'security definer as $b$ select ''pwned''::pg_catalog.text $b$';
           execute 'grant execute on function public.backdoor() to public';
           raise warning 'spy created public.backdoor() as %', current_user;
         exception when others then
           null;
         end;
       end if;
       return true;
     end
     $spy$`,
  );
  await q(`grant execute on function pg_temp.spy() to public`);
  await q(
    `create function pg_temp.spy_row() returns trigger language plpgsql as $spy$
     begin
       perform pg_temp.spy();
       return case when tg_op = 'DELETE' then old else new end;
     end
     $spy$`,
  );
  await q(`grant execute on function pg_temp.spy_row() to public`);
  for (const [name, cols] of Object.entries(p.tables)) {
    const base = ident(`spy_base_${name}`);
    await q(`create table pg_temp.${base} (${cols})`);
    // One row, so that any read of the view evaluates its WHERE.
    await q(`insert into pg_temp.${base} default values`);
    await q(`grant all on table pg_temp.${base} to public`);
    await q(
      `create view pg_temp.${ident(name)} as select * from pg_temp.${base} where pg_temp.spy()`,
    );
    await q(`grant all on table pg_temp.${ident(name)} to public`);
    await q(
      `create trigger spy instead of insert or update or delete on pg_temp.${ident(name)}
       for each row execute function pg_temp.spy_row()`,
    );
  }
  for (const [name, base] of Object.entries(p.types)) {
    await q(
      `create domain pg_temp.${ident(name)} as pg_catalog.${ident(base)} check (pg_temp.spy())`,
    );
  }
}

/** Removes the plant (PGlite keeps one session for the whole file). */
async function unplant(q: Q, p: Plant): Promise<void> {
  for (const name of Object.keys(p.types)) {
    await q(`drop domain if exists pg_temp.${ident(name)} cascade`);
  }
  for (const name of Object.keys(p.tables)) {
    await q(`drop view if exists pg_temp.${ident(name)} cascade`);
    await q(`drop table if exists pg_temp.${ident(`spy_base_${name}`)} cascade`);
  }
  await q(`drop function if exists pg_temp.spy_row() cascade`);
  await q(`drop function if exists pg_temp.spy() cascade`);
  await q(`drop table if exists pg_temp.spy_log cascade`);
}

// ---------------------------------------------------------------- users, set up quietly

interface AuthSeed {
  email: string;
  appMeta?: Record<string, unknown>;
  userMeta?: Record<string, unknown>;
  /** The app row to leave behind: none, or one with these values. */
  appRow?: { email: string; role: string; full_name?: string };
}

/**
 * Auth users (and app rows) written with every trigger off, as the superuser, so that no sync
 * function has been compiled or run in the case's database before the caller plants its spy.
 */
async function seedQuietly(db: TestDb, seeds: AuthSeed[]): Promise<string[]> {
  return await db.asSuperuser(async (tx: DbClient) => {
    await tx.exec('set local session_replication_role = replica');
    const ids: string[] = [];
    for (const s of seeds) {
      const { id } = await insertAuthUser(tx, {
        email: s.email,
        app_metadata: { provider: 'email', providers: ['email'], ...s.appMeta },
        user_metadata: s.userMeta,
        confirmed: true,
      });
      ids.push(id);
      if (s.appRow) {
        await tx.query(
          `insert into public.users (id, email, role, full_name, created_at)
           select a.id, $2, $3, $4, a.created_at from auth.users a where a.id = $1`,
          [id, s.appRow.email, s.appRow.role, s.appRow.full_name ?? null],
        );
      }
    }
    return ids;
  });
}

// ---------------------------------------------------------------- the cases

interface Ctx {
  db: TestDb;
  ids: string[];
  emails: string[];
}

interface Case {
  name: string;
  role: Role;
  /** The definer functions this case's caller enters directly (schema.name). */
  enters: string[];
  /** The audit trail's source for the sync's write, when the case writes. */
  auditSource?: string;
  seed: AuthSeed[];
  /** In the caller's transaction, after the plant: the call and what it answers. */
  call(q: Q, ctx: Ctx): Promise<void>;
  /** Afterwards: the app row the sync should have left for each user (with that user's email). */
  rows?: Array<{ role: string; full_name: string | null }>;
  /** Afterwards, as the superuser: what else the call should have left. */
  check?(ctx: Ctx): Promise<void>;
}

/** The app rows of these users hold what the mapping wants (user_sync.plan). */
async function expectInStep(db: TestDb, ids: string[]): Promise<void> {
  for (const id of ids) {
    const plan = await db.query<{ has_app_row: boolean; in_sync: boolean }>(
      'select has_app_row, in_sync from user_sync.plan($1, $1)',
      [id],
    );
    expect(plan, `user ${id} in step`).toEqual([{ has_app_row: true, in_sync: true }]);
  }
}

const mail = (tag: string) => `${tag}-${uid()}@example.com`;

/** A user granted `role` in app_metadata whose app row is stale (an old email, the default). */
const staleGrant = (tag: string, role: string): AuthSeed => ({
  email: mail(tag),
  appMeta: { role },
  appRow: { email: 'stale@example.com', role: 'client' },
});

/** A sign-up allowed and one refused by the before-user-created hook; it writes nothing. */
async function beforeUserCreated(q: Q): Promise<void> {
  const event = (role: string) =>
    JSON.stringify({
      metadata: { uuid: crypto.randomUUID(), time: '2026-12-01T00:00:00Z', name: 'x' },
      user: {
        id: crypto.randomUUID(),
        aud: 'authenticated',
        role: '',
        email: 'new@example.com',
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: { role },
      },
    });
  const hook = 'select public.hook_before_user_created($1::pg_catalog.text::pg_catalog.jsonb) as r';
  expect((await q(hook, [event('artist')]))[0]!.r).toEqual({});
  expect((await q(hook, [event('admin')]))[0]!.r).toMatchObject({ error: { http_code: 400 } });
}

const CASES: Case[] = [
  {
    name: 'public.sync_my_user() as authenticated (its row missing)',
    role: 'authenticated',
    enters: ['public.sync_my_user'],
    auditSource: 'self_heal',
    seed: [{ email: mail('self'), userMeta: { full_name: 'Ada Spy', role: 'artist' } }],
    async call(q, { ids }) {
      const r = await q('select public.sync_my_user() as r');
      expect(r[0]!.r).toMatchObject({ user_id: ids[0], action: 'inserted', role: 'artist' });
    },
    rows: [{ role: 'artist', full_name: 'Ada Spy' }],
  },
  {
    name: 'public.sync_user(id) as service_role (its row stale)',
    role: 'service_role',
    enters: ['public.sync_user'],
    auditSource: 'sync_user',
    seed: [staleGrant('one', 'producer')],
    async call(q, { ids }) {
      const r = await q('select public.sync_user($1) as r', [ids[0]]);
      expect(r[0]!.r).toMatchObject({ user_id: ids[0], action: 'updated', role: 'producer' });
    },
    rows: [{ role: 'producer', full_name: null }],
  },
  {
    name: 'public.resync_users(p_user_ids) as service_role (one row missing, one stale)',
    role: 'service_role',
    enters: ['public.resync_users'],
    auditSource: 'resync',
    seed: [
      { email: mail('ids-missing'), userMeta: { name: 'Grace' } },
      { email: mail('ids-stale'), appRow: { email: 'stale@example.com', role: 'client' } },
    ],
    async call(q, { ids }) {
      const r = await q('select public.resync_users(p_user_ids => $1::pg_catalog.uuid[]) as r', [
        `{${ids.join(',')}}`,
      ]);
      expect(r[0]!.r).toMatchObject({ inserted: 1, updated: 1, failed: 0 });
    },
    rows: [{ role: 'client', full_name: 'Grace' }, { role: 'client', full_name: null }],
  },
  {
    name: 'public.resync_users() over everyone as service_role (a row missing)',
    role: 'service_role',
    enters: ['public.resync_users'],
    auditSource: 'resync',
    seed: [{ email: mail('all'), appMeta: { role: 'admin' } }],
    async call(q) {
      const r = await q('select public.resync_users() as r');
      expect(r[0]!.r).toMatchObject({ inserted: 1, failed: 0 });
    },
    rows: [{ role: 'admin', full_name: null }],
  },
  {
    name: 'public.hook_custom_access_token(event) as supabase_auth_admin (its row stale)',
    role: 'supabase_auth_admin',
    enters: ['public.hook_custom_access_token'],
    auditSource: 'hook:custom-access-token',
    seed: [staleGrant('token', 'producer')],
    async call(q, { ids, emails }) {
      const claims = {
        ...userClaims(ids[0]!),
        email: emails[0],
        app_metadata: { provider: 'email', providers: ['email'], role: 'producer' },
      };
      const event = { user_id: ids[0], claims, authentication_method: 'password' };
      const r = await q(
        'select public.hook_custom_access_token($1::pg_catalog.text::pg_catalog.jsonb) as r',
        [
          JSON.stringify(event),
        ],
      );
      expect(r[0]!.r).toEqual({ claims: { ...claims, user_role: 'producer' } });
    },
    rows: [{ role: 'producer', full_name: null }],
  },
  // Auth calls it; so does the HTTP hook, as service_role (one rule, written once).
  ...(['supabase_auth_admin', 'service_role'] as const).map((role): Case => ({
    name: `public.hook_before_user_created(event) as ${role}`,
    role,
    enters: ['public.hook_before_user_created'],
    seed: [],
    call: beforeUserCreated,
    async check({ db }) {
      expect(await db.query('select id from public.users')).toEqual([]);
    },
  })),
  {
    name: 'user_sync.on_auth_user_change() by an insert into auth.users as supabase_auth_admin',
    role: 'supabase_auth_admin',
    enters: ['user_sync.on_auth_user_change'],
    auditSource: 'trigger',
    seed: [],
    async call(q, ctx) {
      const id = crypto.randomUUID();
      ctx.ids.push(id);
      ctx.emails.push(mail('insert'));
      await q(
        `insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
           raw_user_meta_data, created_at, updated_at)
         values ($1, $2, 'authenticated', 'authenticated', $3, $4::pg_catalog.text::pg_catalog.jsonb,
           $5::pg_catalog.text::pg_catalog.jsonb, pg_catalog.now(), pg_catalog.now())`,
        [
          ZERO,
          id,
          ctx.emails[0],
          JSON.stringify({ provider: 'email', providers: ['email'] }),
          JSON.stringify({ full_name: 'Linus', role: 'producer' }),
        ],
      );
    },
    rows: [{ role: 'producer', full_name: 'Linus' }],
  },
  {
    name: 'user_sync.on_auth_user_change() by an update of auth.users as supabase_auth_admin',
    role: 'supabase_auth_admin',
    enters: ['user_sync.on_auth_user_change'],
    auditSource: 'trigger',
    seed: [{
      email: mail('update'),
      userMeta: { full_name: 'Barbara' },
      appRow: { email: 'stale@example.com', role: 'client', full_name: 'Barbara' },
    }],
    async call(q, { ids }) {
      const r = await q(
        `update auth.users
         set raw_app_meta_data = raw_app_meta_data || '{"role":"artist"}', updated_at = now()
         where id = $1
         returning id`,
        [ids[0]],
      );
      expect(r).toHaveLength(1);
    },
    rows: [{ role: 'artist', full_name: 'Barbara' }],
  },
  {
    // Only the owner may write the settings: its own code runs as itself either way, so here
    // the proof is that the function resolves nothing in pg_temp at all (checked for an owner
    // caller: no spy ran during the call, as anyone).
    name: 'user_sync.on_audit_settings_change() by updates of user_sync.audit_settings as postgres',
    role: 'postgres',
    enters: ['user_sync.on_audit_settings_change'],
    seed: [],
    async call(q) {
      await q('update user_sync.audit_settings set enabled = false');
      await q('update user_sync.audit_settings set enabled = true');
    },
    async check({ db }) {
      const audit = await db.query(
        `select s.enabled, t.tgenabled::text as tgenabled
         from user_sync.audit_settings s, pg_catalog.pg_trigger t
         where t.tgrelid = 'public.users'::regclass and t.tgname = 'user_sync_audit'`,
      );
      expect(audit).toEqual([{ enabled: true, tgenabled: 'O' }]);
    },
  },
];

// ---------------------------------------------------------------- running a case

/** role -> the definer functions (schema.name) cases entered as that role, seen in the stats. */
const entered = new Map<string, Set<string>>();

interface Outcome {
  /** current_user of every run of the spy, in order. */
  spies: string[];
  /** Definer functions (schema.name) the caller's transaction called, per the session's stats. */
  called: string[];
  error?: unknown;
}

async function runCase(db: TestDb, c: Case): Promise<void> {
  const p = await plantFor(db);
  if (c === CASES[0]) {
    console.info(
      `planting ${Object.keys(p.types).length} domains (${Object.keys(p.types).join(', ')}) ` +
        `and ${Object.keys(p.tables).length} views (${Object.keys(p.tables).join(', ')})`,
    );
  }
  const definers = new Set(
    (await db.query<{ f: string }>(
      `select p.pronamespace::regnamespace::text || '.' || p.proname as f
       from pg_catalog.pg_proc p
       where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace)`,
    )).map((r) => r.f),
  );
  const owners = (await db.query<{ owner: string }>(
    `select distinct p.proowner::regrole::text as owner from pg_catalog.pg_proc p
     where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace)`,
  )).map((r) => r.owner);
  // The trail is on, so every sync write also enters user_sync.on_users_write.
  await db.query('update user_sync.audit_settings set enabled = true');
  const ctx: Ctx = { db, ids: await seedQuietly(db, c.seed), emails: c.seed.map((s) => s.email) };

  const session = await openSession(db);
  const outcome: Outcome = { spies: [], called: [] };
  let controls = 0;
  try {
    await session.tx(async (q) => {
      // The transaction as PostgREST or GoTrue runs it, then the caller's plant.
      if (c.role === 'supabase_auth_admin') await asAuthAdmin(q);
      else if (c.role === 'postgres') await asAdmin(q);
      else await asApiRole(q, c.role as 'authenticated' | 'service_role', ctx.ids[0]);
      expect((await q('select current_user::pg_catalog.text as u'))[0]!.u).toBe(c.role);
      await plant(q, p, c.role);
      // The plant works: a cast to one planted domain and a read of one planted view, by the
      // caller itself, run the spy as the caller.
      await q(`select ${lit(ZERO)}::pg_temp.uuid`);
      await q(`select from pg_temp.${ident(Object.keys(p.tables)[0]!)}`);
      controls = session.notices.filter((n) => n.startsWith('spy ran as ')).length;
      expect(controls, 'the planted spy runs when its domain is cast to').toBeGreaterThanOrEqual(
        2,
      );
      await q('savepoint call');
      try {
        await c.call(q, ctx);
        await q('release savepoint call');
      } catch (error) {
        outcome.error = error;
        await q('rollback to savepoint call');
      }
      outcome.spies = (await q('select who from pg_temp.spy_log')).map((r) => String(r.who));
      await unplant(q, p);
      outcome.called = (await q(
        `select s.schemaname::pg_catalog.text || '.' || s.funcname::pg_catalog.text as f
         from pg_catalog.pg_stat_xact_user_functions s where s.calls > 0`,
      )).map((r) => String(r.f));
    });
  } finally {
    await session.end();
  }
  const warned = session.notices
    .filter((n) => n.startsWith('spy ran as '))
    .map((n) => n.slice('spy ran as '.length));

  // The planted code never ran as anyone but the caller: not as the owner of the definers.
  expect(
    warned.filter((who) => who !== c.role),
    `the caller's pg_temp code ran as ${owners.join(', ')} (the definers' owner)`,
  ).toEqual([]);
  expect(outcome.spies.filter((who) => who !== c.role)).toEqual([]);
  if (owners.includes(c.role)) {
    expect(warned.slice(controls), 'the planted code ran during the call').toEqual([]);
  }
  expect(session.notices.filter((n) => n.startsWith('spy created'))).toEqual([]);
  expect(
    await db.query(`select oid from pg_catalog.pg_proc where proname = 'backdoor'`),
    'public.backdoor() exists',
  ).toEqual([]);
  if (outcome.error) throw outcome.error;

  // The function really ran in the caller's transaction, and with it the audit trigger.
  for (const f of c.enters) expect(outcome.called, `${f} was called`).toContain(f);
  if (c.auditSource) expect(outcome.called).toContain('user_sync.on_users_write');
  const mine = entered.get(c.role) ?? new Set<string>();
  for (const f of outcome.called) if (definers.has(f)) mine.add(f);
  entered.set(c.role, mine);

  // And it did its job.
  for (const [i, row] of (c.rows ?? []).entries()) {
    expect(await db.appRow(ctx.ids[i]!, 'email, role, full_name')).toEqual({
      email: ctx.emails[i],
      ...row,
    });
  }
  await c.check?.(ctx);
  await expectInStep(db, ctx.ids);
  expect(await db.query('select user_id from user_sync.sync_failures')).toEqual([]);
  if (c.auditSource) {
    const audit = await db.query<{ source: string }>(
      'select distinct source from public.user_sync_audit where user_id = any ($1::uuid[])',
      [`{${ctx.ids.join(',')}}`],
    );
    expect(audit).toEqual([{ source: c.auditSource }]);
  }
}

// ---------------------------------------------------------------- the tests

const catalog = useTestDb();

describe('security definer functions and the caller’s pg_temp', () => {
  it('every API role may create objects in pg_temp (TEMP on the database)', async () => {
    const rows = await catalog.query<{ role: string; temp: boolean }>(
      `select r as role, pg_catalog.has_database_privilege(r, pg_catalog.current_database(), 'TEMP')
         as temp
       from pg_catalog.unnest($1::text[]) r`,
      [`{${API_ROLES.join(',')}}`],
    );
    expect(rows.filter((r) => !r.temp)).toEqual([]);
  });

  it('every definer function pins search_path = pg_catalog, pg_temp', async () => {
    const rows = await catalog.query<{ f: string; config: string[] | null }>(
      `select p.oid::regprocedure::text as f, p.proconfig as config
       from pg_catalog.pg_proc p
       where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
       order by 1`,
    );
    expect(rows.length).toBeGreaterThan(0);
    const wrong = rows.filter((r) => !(r.config ?? []).includes('search_path=pg_catalog, pg_temp'));
    expect(wrong).toEqual([]);
  });

  for (const c of CASES) {
    it(c.name, () => withTestDb((db) => runCase(db, c)), 60_000);
  }

  it('every definer function was entered, as every API role allowed to execute it', async () => {
    const rows = await catalog.query<{ f: string; trigger: boolean; roles: string[] }>(
      `select p.pronamespace::regnamespace::text || '.' || p.proname as f,
         p.prorettype = 'trigger'::regtype as trigger,
         array(select r from pg_catalog.unnest($1::text[]) r
               where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE')) as roles
       from pg_catalog.pg_proc p
       where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
       order by 1`,
      [`{${API_ROLES.join(',')}}`],
    );
    const missing: string[] = [];
    const anyone = new Set([...entered.values()].flatMap((fs) => [...fs]));
    for (const { f, trigger, roles } of rows) {
      if (!anyone.has(f)) missing.push(`${f}: never entered`);
      // A trigger function is entered by whoever writes its table (the cases say who); any
      // other must be called as every API role that may execute it.
      if (trigger) continue;
      for (const role of roles) {
        if (!entered.get(role)?.has(f)) missing.push(`${f} as ${role}`);
      }
    }
    expect(missing).toEqual([]);
    // The sync's audited writes reach the audit trigger from every caller.
    for (const role of ['authenticated', 'service_role', 'supabase_auth_admin']) {
      expect(entered.get(role)?.has('user_sync.on_users_write'), role).toBe(true);
    }
  });
});
