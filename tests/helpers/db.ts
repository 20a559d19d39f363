// The test database harness. With DATABASE_URL: a database per test file on the run's private
// hosted-shaped cluster, cloned from the template global-setup.ts migrated with the Supabase
// CLI. Without: a PGlite instance per test file, loaded from the data directory
// global-setup.ts prepared. Either way one interface: superuser queries, GoTrue's transactions
// (as supabase_auth_admin) and PostgREST's (as a user, anon, or the service role).
//
// A test file takes its database with useTestDb() (useServerDb() where it needs two sessions),
// and finds here what most files do with it: uid() for unique names, plain-SQL auth users,
// sync_user and resync_users as the service role, the SQLSTATE of a refused statement.

import { readdir, readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Transaction as PGliteTransaction } from '@electric-sql/pglite';
import postgres from 'postgres';
import type { Sql, TransactionSql } from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import {
  migrate,
  MIGRATIONS_DIR,
  pgliteExecutor,
  postgresQueryable,
} from '../../dev/migrations.ts';
import { type AuthDb, type AuthUser, signUpEmail } from '../../dev/auth/gotrue.ts';
import type { ResyncReport } from '../../shared/resync-report.ts';
import type { Cluster } from './cluster.ts';
import { withDatabase } from '../../dev/pg-url.ts';

export { withDatabase };

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * Server: the run's private cluster, as its superuser supabase_admin, database `postgres`
     * (tests/helpers/cluster.ts). DATABASE_URL only switches the server run on.
     */
    dbServerUrl: string | null;
    /** Server: the migrated template database of this run. */
    dbTemplate: string | null;
    /** PGlite: a tarball of the migrated data directory. */
    pgliteDataDir: string | null;
    /** A run id that names this run's databases. */
    dbRunId: string;
  }
}

/** The queries a test can run inside or outside a transaction. */
export interface DbClient {
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements in one string, no parameters. */
  exec(sql: string): Promise<void>;
}

/** Claims as GoTrue puts them in an access token; PostgREST hands them to SQL. */
export type JwtClaims = Record<string, unknown>;

/** What most tests do with their database, as its methods (made by createTestDb). */
interface TestDbCalls {
  /** A transaction as `role` runs one; `authenticated` as the user `userId` (default: a stranger). */
  as<T>(role: CallerRole, fn: (tx: DbClient) => Promise<T>, userId?: string): Promise<T>;
  /** public.sync_user as the service role calls it (the function's hooks and webhook). */
  syncUser(userId: string, options?: { source?: string; claims?: unknown }): Promise<SyncResult>;
  /** public.resync_users(<args>) as the service role calls it; its report. */
  resyncUsers(args?: string, params?: unknown[]): Promise<ResyncReport>;
  /** The public.users row of a user (these columns), or undefined. */
  appRow<T extends object = Record<string, unknown>>(
    userId: string,
    columns?: string,
  ): Promise<T | undefined>;
}

interface TestDbBase extends DbClient, TestDbCalls {
  /** A transaction as GoTrue runs it: role supabase_auth_admin, search_path `auth`. */
  asAuthAdmin<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  /** A transaction as PostgREST runs a request carrying this user's JWT. */
  asUser<T>(userId: string, fn: (tx: DbClient) => Promise<T>, extraClaims?: JwtClaims): Promise<T>;
  /** A transaction as PostgREST runs a request with the anon (publishable) key. */
  asAnon<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  /** A transaction as PostgREST runs a request with the service role (secret) key. */
  asServiceRole<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  /** A superuser transaction on one connection (temp objects and SET LOCAL need one). */
  asSuperuser<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface ServerTestDb extends TestDbBase {
  readonly kind: 'server';
  /** Connection string of this file's database, as the superuser supabase_admin. */
  readonly url: string;
  /**
   * Connection string of this file's database logging in as `role`: `postgres` is what
   * SUPABASE_DB_URL names on hosted (a non-superuser), the role to give a function process.
   */
  urlAs(role: string): string;
  /**
   * A separate connection pool (for concurrency tests), logging in as `role` (default the
   * superuser supabase_admin). Ended by close() if the test has not ended it.
   */
  connect(role?: string, options?: postgres.Options<Record<string, never>>): Sql;
}

export interface PgliteTestDb extends TestDbBase {
  readonly kind: 'pglite';
  readonly pglite: PGlite;
}

export type TestDb = ServerTestDb | PgliteTestDb;

/** The claims GoTrue issues for a signed-in user, as PostgREST sets them. */
export function userClaims(userId: string, extra: JwtClaims = {}): JwtClaims {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'http://127.0.0.1:54321/auth/v1',
    sub: userId,
    aud: 'authenticated',
    exp: now + 3600,
    iat: now,
    role: 'authenticated',
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: now }],
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    ...extra,
  };
}

/** The claims of the anon (publishable) or service role (secret) key, as PostgREST sets them. */
export function keyClaims(role: 'anon' | 'service_role'): JwtClaims {
  return { iss: 'supabase', ref: 'local', role, iat: 1700000000, exp: 4000000000 };
}

/**
 * What PostgREST runs first in every request transaction
 * (docs/reference/postgrest.md#role-and-claims): search path, claims, request settings, then the
 * role switch. `role` is taken from the claims.
 */
export function preRequest(claims: JwtClaims): { sql: string; params: unknown[] } {
  return {
    sql: `select set_config('search_path', '"public", "extensions"', true),
                 set_config('request.jwt.claims', $1, true),
                 set_config('request.method', 'POST', true),
                 set_config('request.path', '/rpc', true),
                 set_config('role', $2, true)`,
    params: [JSON.stringify(claims), String(claims.role)],
  };
}

let counter = 0;
function uniqueName(prefix: string): string {
  const run = safeInject('dbRunId') ?? `${process.pid}`;
  counter += 1;
  return `${prefix}_${run}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

function safeInject<K extends 'dbServerUrl' | 'dbTemplate' | 'pgliteDataDir' | 'dbRunId'>(
  key: K,
): import('vitest').ProvidedContext[K] | undefined {
  try {
    return inject(key);
  } catch {
    return undefined;
  }
}

/**
 * The run's private cluster as its superuser (database `postgres`), for a test that makes
 * databases of its own. Throws where the run has no server (DATABASE_URL unset) or the global
 * setup did not run.
 */
export function serverUrl(): string {
  const url = safeInject('dbServerUrl');
  if (!url) {
    throw new Error(
      process.env.DATABASE_URL
        ? 'No private cluster: tests/helpers/global-setup.ts did not run (is vitest.config.ts in use?)'
        : 'No server in this run: set DATABASE_URL to run the server suites',
    );
  }
  return url;
}

/** A fresh database for one test file. */
export async function createTestDb(): Promise<TestDb> {
  const started = performance.now();
  const made = process.env.DATABASE_URL
    ? await createServerDb(serverUrl())
    : await createPgliteDb();
  if (process.env.DEBUG_DB_HARNESS) {
    console.log(
      `${made.kind} test database ready in ${Math.round(performance.now() - started)} ms`,
    );
  }
  const db = made as TestDb;
  return Object.assign(db, callsOn(db));
}

/** Without the calls createTestDb adds. */
type Made<D> = Omit<D, keyof TestDbCalls>;

// ---------------------------------------------------------------- server

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Runs one statement on the run's cluster as its superuser, on a connection of its own. */
async function onCluster(statement: string): Promise<void> {
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** A database name of this run (the harness's prefix, so a killed run's leftover shows whose). */
export function testDatabaseName(tag = ''): string {
  return uniqueName(`usync_t${tag}`);
}

/** Drops a database of this run, whoever is still connected to it. */
export async function dropServerDatabase(name: string): Promise<void> {
  await onCluster(`drop database if exists ${quoteIdent(name)} with (force)`);
}

/** A database of the test's own on the run's cluster: empty unless `options` says a template. */
export async function createServerDatabase(
  options = '',
): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = testDatabaseName();
  await onCluster(`create database ${quoteIdent(name)} ${options}`);
  return { name, url: withDatabase(serverUrl(), name), drop: () => dropServerDatabase(name) };
}

/** The run's cluster as tests/helpers/cluster.ts's functions take it (they build URLs from it). */
export function runCluster(): Cluster {
  const base = serverUrl();
  return {
    url: (database = 'postgres', user?: string) => withDatabase(base, database, user),
  } as Cluster;
}

/** A connection pool (or a transaction of one) as a DbClient. */
export const postgresClient: (sql: Sql | TransactionSql) => DbClient = postgresQueryable;

/**
 * A transaction on `sql` (a pool of the test's own, say) as PostgREST runs a request carrying
 * these claims: userClaims(id) for a signed-in user, keyClaims(role) for a key.
 */
export function inRequest<T>(
  sql: Sql,
  claims: JwtClaims,
  fn: (tx: DbClient) => Promise<T>,
): Promise<T> {
  return sql.begin(async (tx) => {
    const pre = preRequest(claims);
    await tx.unsafe(pre.sql, pre.params as string[]);
    return await fn(postgresClient(tx));
  }) as Promise<T>;
}

async function createServerDb(baseUrl: string): Promise<Made<ServerTestDb>> {
  const template = safeInject('dbTemplate');
  if (!template) {
    throw new Error(
      'No template database: tests/helpers/global-setup.ts did not run (is vitest.config.ts in use?)',
    );
  }
  // Owned by `postgres` like the template (and a hosted project's database).
  const { name } = await createServerDatabase(
    `template ${quoteIdent(template)} owner postgres`,
  );
  const url = withDatabase(baseUrl, name);
  const pools: Sql[] = [];
  const open = (connUrl: string, options: postgres.Options<Record<string, never>> = {}): Sql => {
    const sql = postgres(connUrl, { max: 4, onnotice: () => {}, ...options });
    pools.push(sql);
    return sql;
  };
  const main = open(url);
  // GoTrue's own connection: logs in as supabase_auth_admin, so the role's search_path (auth)
  // and idle_in_transaction_session_timeout apply exactly as on Supabase.
  let authAdmin: Sql | undefined;
  const asClaims = <T>(claims: JwtClaims, fn: (tx: DbClient) => Promise<T>): Promise<T> =>
    inRequest(main, claims, fn);

  return {
    kind: 'server',
    url,
    urlAs: (role) => withDatabase(baseUrl, name, role),
    ...postgresClient(main),
    connect(role?: string, options?: postgres.Options<Record<string, never>>): Sql {
      return open(role === undefined ? url : withDatabase(baseUrl, name, role), options);
    },
    asAuthAdmin<T>(fn: (tx: DbClient) => Promise<T>): Promise<T> {
      authAdmin ??= open(withDatabase(baseUrl, name, 'supabase_auth_admin'), { max: 2 });
      return authAdmin.begin((tx) => fn(postgresClient(tx))) as Promise<T>;
    },
    asUser<T>(userId: string, fn: (tx: DbClient) => Promise<T>, extra?: JwtClaims): Promise<T> {
      return asClaims(userClaims(userId, extra), fn);
    },
    asAnon: (fn) => asClaims(keyClaims('anon'), fn),
    asServiceRole: (fn) => asClaims(keyClaims('service_role'), fn),
    asSuperuser: <T>(fn: (tx: DbClient) => Promise<T>) =>
      main.begin((tx) => fn(postgresClient(tx))) as Promise<T>,
    async close(): Promise<void> {
      await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
      await dropServerDatabase(name);
    },
  };
}

// ---------------------------------------------------------------- PGlite

function pgliteClient(db: PGlite | PGliteTransaction): DbClient {
  return {
    async query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
      return (await db.query<T>(text, params)).rows;
    },
    async exec(text: string): Promise<void> {
      await db.exec(text);
    },
  };
}

/** A PGlite with the roles, the stand-in and every migration, built from nothing. */
export async function preparePglite(): Promise<PGlite> {
  const db = await PGlite.create({ relaxedDurability: true });
  await migrate(pgliteExecutor(db));
  return db;
}

async function createPgliteDb(): Promise<Made<PgliteTestDb>> {
  const dump = safeInject('pgliteDataDir');
  const db = dump
    ? await PGlite.create({
      loadDataDir: new Blob([await readFile(dump)]),
      relaxedDurability: true,
    })
    : await preparePglite();
  // The migrations on disk may be newer than the prepared copy (watch mode): catch up.
  await migrate(pgliteExecutor(db));

  const inTx = <T>(
    setup: (tx: PGliteTransaction) => Promise<void>,
    fn: (tx: DbClient) => Promise<T>,
  ) =>
    db.transaction(async (tx) => {
      await setup(tx);
      return await fn(pgliteClient(tx));
    });
  const asClaims = <T>(claims: JwtClaims, fn: (tx: DbClient) => Promise<T>): Promise<T> =>
    inTx(async (tx) => {
      const pre = preRequest(claims);
      await tx.query(pre.sql, pre.params);
    }, fn);

  return {
    kind: 'pglite',
    pglite: db,
    ...pgliteClient(db),
    // PGlite has one session: switch to GoTrue's role and its role search_path by hand.
    asAuthAdmin: (fn) =>
      inTx(async (tx) => {
        await tx.exec('set local role supabase_auth_admin; set local search_path = auth');
      }, fn),
    asUser: (userId, fn, extra) => asClaims(userClaims(userId, extra), fn),
    asAnon: (fn) => asClaims(keyClaims('anon'), fn),
    asServiceRole: (fn) => asClaims(keyClaims('service_role'), fn),
    asSuperuser: (fn) => inTx(async () => {}, fn),
    async close(): Promise<void> {
      if (!db.closed) await db.close();
    },
  };
}

/**
 * Runs fn while public.users refuses rows whose email ends in @blocked.test, through a CHECK
 * constraint named `constraint`: a write that fails inside the sync, as any failure would.
 */
export async function whileEmailsBlocked<T>(
  db: DbClient,
  constraint: string,
  fn: () => Promise<T>,
): Promise<T> {
  await db.exec(`alter table public.users add constraint ${constraint}
    check (email is null or email not like '%@blocked.test')`);
  try {
    return await fn();
  } finally {
    await db.exec(`alter table public.users drop constraint ${constraint}`);
  }
}

/** The SQLSTATE and message of a statement that must fail (it throws if the statement succeeds). */
export async function pgError(
  promise: Promise<unknown>,
): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error('expected the statement to fail');
}

// ---------------------------------------------------------------- one database per test file

/** Whether this run has a server (DATABASE_URL set), where the two-session suites run. */
export const SERVER = Boolean(process.env.DATABASE_URL);

/** A stand-in for a database made in beforeAll: it throws if used before that. */
function madeInBeforeAll<T extends object>(current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_, key) {
      const db = current();
      if (!db) {
        throw new Error(
          'The test database is made in beforeAll (and only on the server by useServerDb): ' +
            'use it inside a test or a hook.',
        );
      }
      return Reflect.get(db, key);
    },
  });
}

/**
 * This file's (or this describe block's) test database: made before its tests, dropped after
 * them. The handle can be used from inside any test or hook.
 */
export function useTestDb(): TestDb {
  let db: TestDb | undefined;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  return madeInBeforeAll(() => db);
}

/** useTestDb for the suites that need two sessions: made on a server run only. */
export function useServerDb(): ServerTestDb {
  let db: ServerTestDb | undefined;
  beforeAll(async () => {
    if (!SERVER) return;
    const created = await createTestDb();
    if (created.kind !== 'server') throw new Error('expected a server database');
    db = created;
  });
  afterAll(async () => {
    await db?.close();
  });
  return madeInBeforeAll(() => db);
}

/** A database for one piece of a test, dropped when fn is done with it. */
export async function withTestDb<T>(fn: (db: TestDb) => Promise<T>): Promise<T> {
  const db = await createTestDb();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * The migration files in supabase/migrations, in the order they apply (named the Supabase CLI
 * way, YYYYMMDDHHMMSS_what.sql), read from the folder: the tests need not know their names.
 */
export async function migrationFiles(): Promise<Array<{ file: string; version: string }>> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{14}_.+\.sql$/.test(f)).sort();
  return files.map((file) => ({ file, version: file.slice(0, 14) }));
}

/** A short unique tag, for emails and names no other test uses. */
export const uid = (): string => crypto.randomUUID().slice(0, 8);

// ---------------------------------------------------------------- what the tests do with it

/** The SQLSTATE of a statement that must fail (it throws if the statement succeeds). */
export async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  return (await pgError(promise)).code;
}

/** Who a request runs as: an API role (PostgREST) or GoTrue's own. */
export type CallerRole = 'anon' | 'authenticated' | 'service_role' | 'supabase_auth_admin';

/** What sync_user answers (docs/sql-api.md, "Sync result"). */
export type SyncResult = Record<string, unknown>;

function callsOn(db: TestDb): TestDbCalls {
  return {
    as<T>(role: CallerRole, fn: (tx: DbClient) => Promise<T>, userId = crypto.randomUUID()) {
      switch (role) {
        case 'anon':
          return db.asAnon(fn);
        case 'authenticated':
          return db.asUser(userId, fn);
        case 'service_role':
          return db.asServiceRole(fn);
        case 'supabase_auth_admin':
          return db.asAuthAdmin(fn);
      }
    },
    async syncUser(userId, { source = 'sync_user', claims = null } = {}) {
      const [row] = await db.asServiceRole((tx) =>
        tx.query<{ r: SyncResult }>('select public.sync_user($1, $2, $3::text::jsonb) as r', [
          userId,
          source,
          claims === null ? null : JSON.stringify(claims),
        ])
      );
      return row!.r;
    },
    async resyncUsers(args = '', params = []) {
      const [row] = await db.asServiceRole((tx) =>
        tx.query<{ r: ResyncReport }>(`select public.resync_users(${args}) as r`, params)
      );
      return row!.r;
    },
    async appRow<T extends object>(userId: string, columns = '*'): Promise<T | undefined> {
      const rows = await db.query<T>(`select ${columns} from public.users where id = $1`, [userId]);
      return rows[0];
    },
  };
}

/** A public.users row as the tests read it back (deleted_at aside). */
export interface AppRow {
  id: string;
  email: string | null;
  phone: string | null;
  full_name: string | null;
  avatar_url: string | null;
  role: string;
  email_confirmed_at: Date | null;
  is_anonymous: boolean;
  created_at: Date;
  updated_at: Date;
}

/** Runs fn with every user trigger on auth.users off: nothing syncs on its own. */
export async function withoutTriggers<T>(db: DbClient, fn: () => Promise<T>): Promise<T> {
  await db.exec('alter table auth.users disable trigger user');
  try {
    return await fn();
  } finally {
    await db.exec('alter table auth.users enable trigger user');
  }
}

/** An auth user as plain SQL writes one (the SQL editor, a seed script): no GoTrue at all. */
export interface PlainAuthUser {
  id?: string;
  email?: string | null;
  /** auth.users.role: 'authenticated', or '' as GoTrue inserts it before setting it. */
  role?: string;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
  confirmed?: boolean;
}

const EMAIL_APP_METADATA = { provider: 'email', providers: ['email'] };

/**
 * Inserts an auth user naming only the columns a hand-written insert names (GoTrue's name every
 * column) and returns its row. The triggers fire as for any insert.
 */
export async function insertAuthUser(db: DbClient, user: PlainAuthUser = {}): Promise<AuthUser> {
  const id = user.id ?? crypto.randomUUID();
  const [row] = await db.query<AuthUser>(
    `insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
       raw_user_meta_data, email_confirmed_at, created_at, updated_at)
     values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', $2, $3,
       $4::text::jsonb, $5::text::jsonb, case when $6::boolean then now() end, now(), now())
     returning *`,
    [
      id,
      user.role ?? 'authenticated',
      user.email === undefined ? `${id.slice(0, 8)}@example.com` : user.email,
      JSON.stringify(user.app_metadata ?? EMAIL_APP_METADATA),
      JSON.stringify(user.user_metadata ?? {}),
      user.confirmed ?? false,
    ],
  );
  return row!;
}

/**
 * One INSERT … SELECT of `count` plain auth users over generate_series(1, count) as i: email
 * `<emailPrefix><i>@example.com`, user metadata from a SQL expression of i.
 */
export function insertAuthUsersSql(
  count: number,
  { emailPrefix, userMetadataSql = `'{}'` }: { emailPrefix: string; userMetadataSql?: string },
): string {
  return `insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
      raw_user_meta_data, created_at, updated_at)
    select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
      'authenticated', ${quoteLiteral(emailPrefix)} || i || '@example.com',
      ${quoteLiteral(JSON.stringify(EMAIL_APP_METADATA))}, ${userMetadataSql}, now(), now()
    from generate_series(1, ${Number(count)}) as i`;
}

// ---------------------------------------------------------------- a second session (server)

/** A transaction left open on a session of its own: a row lock held, a change in flight. */
export interface OpenTransaction<T> {
  /** What the transaction's statements returned. */
  result: T;
  /** Commits it and closes its session. */
  commit(): Promise<void>;
}

/**
 * Runs `work` in a transaction on a new session of `db` logging in as `role` (default the
 * superuser), and leaves the transaction open until commit(). Server only: PGlite has one
 * session.
 */
export async function openTransaction<T>(
  db: TestDb,
  work: (tx: DbClient) => Promise<T>,
  role?: string,
): Promise<OpenTransaction<T>> {
  if (db.kind !== 'server') {
    throw new Error('openTransaction needs a server: PGlite has one session');
  }
  const sql = db.connect(role, { max: 1 });
  let commit = () => {};
  const committing = new Promise<void>((resolve) => (commit = resolve));
  let ran = (_: T) => {};
  const worked = new Promise<T>((resolve) => (ran = resolve));
  const transaction = sql.begin(async (tx) => {
    ran(await work(postgresClient(tx)));
    await committing;
  });
  try {
    const result = await Promise.race([worked, transaction.then(() => worked)]);
    return {
      result,
      async commit() {
        commit();
        try {
          await transaction;
        } finally {
          await sql.end({ timeout: 5 });
        }
      },
    };
  } catch (error) {
    await sql.end({ timeout: 5 });
    throw error;
  }
}

/**
 * Returns once a session waits on a lock in a statement like `pattern` (a LIKE pattern), or
 * after about `ms` milliseconds if none does.
 */
export async function untilWaitingOnLock(db: DbClient, pattern: string, ms = 4_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < ms;) {
    const [waiting] = await db.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where wait_event_type = 'Lock' and query like $1`,
      [pattern],
    );
    if (waiting!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------------------------------------------------------------- users signed up as GoTrue does

/**
 * A user signed up by email as GoTrue signs one up (tests/helpers/gotrue.ts), as
 * `<tag>-<uid>@example.com`, confirmed at once unless `autoconfirm: false`, asking for `data`
 * as user_metadata.
 */
export function signUpUser(
  db: AuthDb,
  tag: string,
  { data, autoconfirm = true }: { data?: Record<string, unknown>; autoconfirm?: boolean } = {},
): Promise<AuthUser> {
  return signUpEmail(db, { email: `${tag}-${uid()}@example.com`, autoconfirm, data });
}
