// The test database harness. With DATABASE_URL: a database per test file on the run's private
// hosted-shaped cluster, cloned from the template global-setup.ts migrated with the Supabase
// CLI. Without: a PGlite instance per test file, loaded from the data directory
// global-setup.ts prepared. Either way one interface: superuser queries, GoTrue's transactions
// (as supabase_auth_admin) and PostgREST's (as a user, anon, or the service role).

import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Transaction as PGliteTransaction } from '@electric-sql/pglite';
import postgres from 'postgres';
import type { Sql, TransactionSql } from 'postgres';
import { inject } from 'vitest';
import { migrate, pgliteExecutor } from '../../dev/migrations.ts';

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

interface TestDbBase extends DbClient {
  /** A transaction as GoTrue runs it: role supabase_auth_admin, search_path `auth`. */
  asAuthAdmin<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  /** A transaction as PostgREST runs a request carrying this user's JWT. */
  asUser<T>(userId: string, fn: (tx: DbClient) => Promise<T>, extraClaims?: JwtClaims): Promise<T>;
  /** A transaction as PostgREST runs a request with the anon (publishable) key. */
  asAnon<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
  /** A transaction as PostgREST runs a request with the service role (secret) key. */
  asServiceRole<T>(fn: (tx: DbClient) => Promise<T>): Promise<T>;
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

function keyClaims(role: 'anon' | 'service_role'): JwtClaims {
  return { iss: 'supabase', ref: 'local', role, iat: 1700000000, exp: 4000000000 };
}

/**
 * What PostgREST runs first in every request transaction (spec §5.2): search path, claims,
 * request settings, then the role switch. `role` is taken from the claims.
 */
function preRequest(claims: JwtClaims): { sql: string; params: unknown[] } {
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
  const db = process.env.DATABASE_URL ? await createServerDb(serverUrl()) : await createPgliteDb();
  if (process.env.DEBUG_DB_HARNESS) {
    console.log(`${db.kind} test database ready in ${Math.round(performance.now() - started)} ms`);
  }
  return db;
}

// ---------------------------------------------------------------- server

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A connection string with another database and, optionally, another user. */
export function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  if (user !== undefined) {
    u.username = encodeURIComponent(user);
    u.password = '';
  }
  return u.toString();
}

function postgresClient(sql: Sql | TransactionSql): DbClient {
  return {
    async query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters per registered type
      const rows = await sql.unsafe(text, params as any[]);
      return [...rows] as unknown as T[];
    },
    async exec(text: string): Promise<void> {
      await sql.unsafe(text).simple();
    },
  };
}

async function createServerDb(baseUrl: string): Promise<ServerTestDb> {
  const template = safeInject('dbTemplate');
  if (!template) {
    throw new Error(
      'No template database: tests/helpers/global-setup.ts did not run (is vitest.config.ts in use?)',
    );
  }
  const name = uniqueName('usync_t');
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  try {
    // Owned by `postgres` like the template (and a hosted project's database).
    await admin.unsafe(
      `create database ${quoteIdent(name)} template ${quoteIdent(template)} owner postgres`,
    );
  } finally {
    await admin.end({ timeout: 5 });
  }
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
    main.begin(async (tx) => {
      const pre = preRequest(claims);
      await tx.unsafe(pre.sql, pre.params as string[]);
      return await fn(postgresClient(tx));
    }) as Promise<T>;

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
    async close(): Promise<void> {
      await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
      const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`drop database if exists ${quoteIdent(name)} with (force)`);
      } finally {
        await admin.end({ timeout: 5 });
      }
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

async function createPgliteDb(): Promise<PgliteTestDb> {
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
