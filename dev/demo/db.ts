// The demo's database: a throw-away one, never yours. Without DATABASE_URL an in-memory PGlite;
// with it, a scratch database created on that server and dropped at the end. Either way: the
// roles, the auth stand-in and every migration, a connection for the function (the direct
// gateway, as deployed), and GoTrue's own way of writing (supabase_auth_admin, search_path auth).

import postgres from 'postgres';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import {
  createDirectGateway,
  postgresExecutor as gatewayExecutor,
} from '../../shared/gateways/direct.ts';
import type { Gateway } from '../../shared/gateway.ts';
import type { AuthDb, SqlClient } from '../auth/gotrue.ts';
import { migrate, postgresExecutor } from '../migrations.ts';
import { openPglite, pgliteGateway } from '../server.ts';
import { withDatabase } from '../pg-url.ts';

export interface DemoDb {
  readonly kind: 'pglite' | 'server';
  /** Where it runs, for people. */
  readonly label: string;
  /** As the database owner (the Dashboard's SQL editor, a migration). */
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** GoTrue's transactions: role supabase_auth_admin, search_path auth (as on Supabase). */
  readonly auth: AuthDb;
  /**
   * The same statements with triggers off (session_replication_role = replica, as
   * pg_restore --disable-triggers and logical replication run): no trigger, no database
   * webhook sees them.
   */
  readonly authTriggersOff: AuthDb;
  /** For the function: the direct gateway, as the deployed function uses it. */
  readonly gateway: Gateway;
  close(): Promise<void>;
}

function pgliteClient(tx: Transaction): SqlClient {
  return { query: async (sql, params) => (await tx.query(sql as string, params)).rows as never };
}

/** A DemoDb over a migrated PGlite; close() closes it only when `owned`. */
export function demoDbOnPglite(db: PGlite, label: string, owned: boolean): DemoDb {
  const inTx = (setup: string): AuthDb => ({
    asAuthAdmin: (fn) =>
      db.transaction(async (tx) => {
        await tx.exec(setup);
        return await fn(pgliteClient(tx));
      }),
  });
  return {
    kind: 'pglite',
    label,
    query: async (sql, params) => (await db.query(sql, params)).rows as never,
    auth: inTx('set local role supabase_auth_admin; set local search_path = auth'),
    authTriggersOff: inTx(
      'set local session_replication_role = replica; set local search_path = auth',
    ),
    gateway: { ...pgliteGateway(db), close: () => Promise.resolve() },
    close: () => owned && !db.closed ? db.close() : Promise.resolve(),
  };
}

/** The same database, logging in as `user` (trust or peer authentication, as in local dev). */
function asUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = '';
  return u.toString();
}

function postgresClient(sql: postgres.Sql | postgres.TransactionSql): SqlClient {
  return {
    query: async (text, params = []) =>
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters per registered type
      [...await sql.unsafe(text, params as any[])] as never,
  };
}

/**
 * A DemoDb over a migrated database on a server (`url` names it; supabase_auth_admin must be
 * able to log in to it, as on Supabase). close() ends its connections, then calls `onClose`.
 */
export function demoDbOnServer(
  url: string,
  label: string,
  onClose: () => Promise<void> = () => Promise.resolve(),
): DemoDb {
  const owner = postgres(url, { max: 4, onnotice: () => {} });
  const authAdmin = postgres(asUser(url, 'supabase_auth_admin'), { max: 2, onnotice: () => {} });
  const gateway = createDirectGateway(gatewayExecutor(url));
  return {
    kind: 'server',
    label,
    query: async (sql, params = []) =>
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters per registered type
      [...await owner.unsafe(sql, params as any[])] as never,
    auth: {
      asAuthAdmin: (fn) => authAdmin.begin((tx) => fn(postgresClient(tx))) as never,
    },
    authTriggersOff: {
      asAuthAdmin: (fn) =>
        owner.begin(async (tx) => {
          await tx.unsafe('set local session_replication_role = replica');
          await tx.unsafe('set local search_path = auth');
          return await fn(postgresClient(tx));
        }) as never,
    },
    gateway: { ...gateway, close: () => Promise.resolve() },
    async close() {
      await Promise.all([
        owner.end({ timeout: 5 }),
        authAdmin.end({ timeout: 5 }),
        gateway.close?.(),
      ]);
      await onClose();
    },
  };
}

/** A scratch database on the server of `baseUrl`, migrated; dropped by close(). */
async function scratchServerDb(baseUrl: string): Promise<DemoDb> {
  const name = `user_sync_demo_${process.pid}_${Date.now().toString(36)}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  const drop = async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end({ timeout: 5 });
  };
  try {
    // Roles belong to the cluster: create them only where they are missing, so a demo never
    // rewrites the roles a test run (or anything else) on the same server relies on.
    const roles = await admin<{ present: boolean }[]>`
      select exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') as present`;
    await admin.unsafe(`create database "${name}"`);
    const url = withDatabase(baseUrl, name);
    const migrator = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(postgresExecutor(migrator), { roles: roles[0]?.present !== true });
    } finally {
      await migrator.end({ timeout: 5 });
    }
    return demoDbOnServer(
      url,
      `scratch database "${name}" on the DATABASE_URL server (dropped at the end)`,
      drop,
    );
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
}

/** A throw-away database: PGlite in memory, or a scratch database on DATABASE_URL's server. */
export async function openDemoDb(databaseUrl?: string): Promise<DemoDb> {
  if (databaseUrl) return await scratchServerDb(databaseUrl);
  return demoDbOnPglite(
    await openPglite(),
    'embedded PGlite, in memory (gone when the demo ends)',
    true,
  );
}
