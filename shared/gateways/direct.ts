import postgres from 'postgres';
import { assertSqlName, type Gateway, GatewayError, kindForSqlState } from '../gateway.ts';

/** One transaction's worth of database access. */
export interface Tx {
  /** Runs statements without parameters (one round trip, several statements allowed). */
  exec(sql: string): Promise<void>;
  query<R extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<R[]>;
}

export interface Executor {
  begin<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The role PostgREST would switch to for a service-role key
 * (docs/reference/postgrest.md#role-and-claims).
 */
const ROLE = 'service_role';

/**
 * Calls `public."<fn>"(<name> => $1, …)` inside a transaction that first does
 * `set local role service_role`, as PostgREST would for a service key, so the grants the
 * migrations give (and revoke) are exactly the ones exercised. Names are checked against
 * `^[a-z_][a-z0-9_]*$`; values are always bound parameters, left to the driver to serialise for
 * the parameter types the server describes (never pre-stringified: postgres.js would write the
 * string 'true' for a boolean as false).
 */
export function createDirectGateway(executor: Executor): Gateway {
  return {
    async rpc<T>(fn: string, args: Record<string, unknown>, opts: { timeoutMs?: number } = {}) {
      assertSqlName(fn);
      const names = Object.keys(args);
      names.forEach(assertSqlName);
      const list = names.map((name, i) => `${name} => $${i + 1}`).join(', ');
      const sql = `select public."${fn}"(${list}) as result`;
      const params = names.map((name) => args[name] ?? null);
      const rows = await withTimeout(
        executor.begin(async (tx) => {
          await tx.exec(setup(opts.timeoutMs));
          return await tx.query<{ result: unknown }>(sql, params);
        }),
        opts.timeoutMs,
      );
      return rows[0]?.result as T;
    },
    async ping(opts = {}) {
      await withTimeout(
        executor.begin(async (tx) => {
          await tx.exec(setup(opts.timeoutMs));
          await tx.query('select 1 as ok', []);
        }),
        opts.timeoutMs,
      );
    },
    close: () => executor.close(),
  };
}

function setup(timeoutMs: number | undefined): string {
  const timeout = timeoutMs === undefined
    ? ''
    : `; set local statement_timeout = ${Math.ceil(timeoutMs)}`;
  return `set local role ${ROLE}${timeout}`;
}

async function withTimeout<T>(promise: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return await promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The server cancels the statement itself (statement_timeout); this also bounds waiting for
  // a connection. Grace of 250 ms so the server's own timeout normally wins.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GatewayError('timeout', `No answer within ${ms} ms`)),
      ms + 250,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

/** Turns a driver error (postgres.js, PGlite) into a GatewayError; the message says only kind and code. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) {
      return new GatewayError('unavailable', `Database unreachable (${code})`, code);
    }
    if (/^[0-9A-Z]{5}$/.test(code)) {
      const kind = kindForSqlState(code);
      // 22023 messages are sentences for people (docs/sql-api.md); others may quote data.
      const message = kind === 'invalid_argument'
        ? String((err as Error).message)
        : `SQLSTATE ${code}`;
      return new GatewayError(kind, message, code);
    }
  }
  return new GatewayError('failed', 'Database call failed');
}

/**
 * A statement inside `sql.begin` that failed because its connection is gone never settles.
 * postgres.js 3.4.9 answers a failed statement in a transaction by writing ROLLBACK on the same
 * connection; after the connection is lost that write either throws from a setImmediate (an
 * uncaught TypeError that ends the process: porsager/postgres#1154, #1208) or stays queued behind
 * a cleared timer, so the reconnected connection never sends its startup message and the pool
 * stops answering (LanternOps/breeze#3225). Both were seen here after pg_terminate_backend and a
 * restart (tests/reliability). Not settling means no ROLLBACK is written; `begin` itself rejects
 * with CONNECTION_CLOSED when the socket closes, and the server has rolled back already.
 */
export async function unlessConnectionLost<T>(statement: Promise<T>): Promise<T> {
  try {
    return await statement;
  } catch (err) {
    if (isConnectionLoss(err)) return await new Promise<never>(() => {});
    throw err;
  }
}

/** The connection is gone: a socket error, or the server ended the session (08xxx, 57P01-03). */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' &&
    (NETWORK_CODES.has(code) || code.startsWith('08') || /^57P0[1-3]$/.test(code));
}

export interface PostgresExecutorOptions {
  /** Pool size. An edge function worker serves few requests at once. */
  max?: number;
}

/**
 * The `postgres` package on DATABASE_URL / SUPABASE_DB_URL. It connects on first use and keeps
 * a small pool for the life of the worker. `prepare: false` because Supabase's pooler
 * (Supavisor, transaction mode) cannot keep prepared statements across transactions.
 *
 * After a lost connection the pool is replaced by a fresh one: postgres.js 3.4.9 can leave a
 * connection whose socket closed while a write was queued (its own Sync after a FATAL error, as
 * pg_terminate_backend sends) unable to send anything again, so it would time out on every
 * reconnect (LanternOps/breeze#3225). New connection objects start clean; the old pool is ended.
 */
export function postgresExecutor(url: string, options: PostgresExecutorOptions = {}): Executor {
  const open = () =>
    postgres(url, {
      max: options.max ?? 3,
      prepare: false,
      idle_timeout: 60,
      connect_timeout: 3,
      onnotice: () => {},
      connection: { application_name: 'user-sync' },
    });
  let sql = open();
  const retired = new Set<Promise<void>>();
  const replace = (pool: postgres.Sql) => {
    if (pool !== sql) return; // another call already replaced it
    sql = open();
    // Calls already running on the old pool may finish; new ones go to the new pool.
    const ending = pool.end({ timeout: 5 }).catch(() => {});
    retired.add(ending);
    void ending.finally(() => retired.delete(ending));
  };
  return {
    async begin(fn) {
      const pool = sql;
      try {
        return await pool.begin((tx) =>
          fn({
            exec: async (text) => {
              await unlessConnectionLost(tx.unsafe(text).simple());
            },
            query: async <R extends Record<string, unknown>>(text: string, params: unknown[]) =>
              (await unlessConnectionLost(tx.unsafe(
                text,
                params as postgres.ParameterOrJSON<never>[],
              ))) as unknown as R[],
          })
        ) as Awaited<ReturnType<typeof fn>>;
      } catch (err) {
        if (isConnectionLoss(err)) replace(pool);
        throw toGatewayError(err);
      }
    },
    async close() {
      await Promise.all([sql.end({ timeout: 5 }), ...retired]);
    },
  };
}
