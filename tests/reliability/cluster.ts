// A database this test may restart. The restart must not touch the run's cluster (other test
// files run against it in parallel), so the load-and-fault suites start a private PostgreSQL
// cluster of their own (tests/helpers/cluster.ts): shaped like hosted Supabase as the run's
// cluster is, one database with the auth stand-in and the migrations applied by the Supabase
// CLI as `postgres`, stopped and deleted at the end.
//
// Where no cluster of its own can be made, the fallback is a database of its own on the run's
// cluster (a clone of the run's template), "restarted" by refusing connections (ALTER DATABASE
// … ALLOW_CONNECTIONS false) and terminating every backend on it, then allowing connections
// again.

import postgres from 'postgres';
import { type Cluster, type RestartResult, startHostedCluster } from '../helpers/cluster.ts';
import { createTestDb, type ServerTestDb, serverUrl } from '../helpers/db.ts';

export type { RestartResult };

const DB_NAME = 'usync_load';

/** A migrated database the test may restart, terminate connections on, and throw away. */
export interface FaultableDatabase {
  /** How a restart is done here, for the figures. */
  readonly kind: 'private cluster' | "the run's cluster (simulated restart)";
  /** Superuser (supabase_admin) URL of the migrated database. */
  readonly url: string;
  /** The same database, logging in as `role` (`postgres` is the function's, as on hosted). */
  urlAs(role: string): string;
  restart(): Promise<RestartResult>;
  /** Stops and deletes what was made. Safe to call twice. */
  close(): Promise<void>;
}

/** initdb, start, migrate. Throws (and leaves nothing behind) if any step fails. */
export async function startPrivateCluster(): Promise<FaultableDatabase> {
  const cluster: Cluster = await startHostedCluster(DB_NAME, {
    settings: { max_connections: 200 },
  });
  return {
    kind: 'private cluster',
    url: cluster.url(DB_NAME),
    urlAs: (role) => cluster.url(DB_NAME, role),
    restart: () => cluster.restart(),
    close: () => cluster.stop(),
  };
}

/**
 * The fallback: a database of its own on the run's cluster. A "restart" refuses new
 * connections to it, terminates every session on it, waits `downMs`, and allows connections
 * again; the rest of the server is untouched.
 */
export async function sharedServerDatabase(downMs = 500): Promise<FaultableDatabase> {
  const db = (await createTestDb()) as ServerTestDb;
  const name = decodeURIComponent(new URL(db.url).pathname.slice(1));
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  let closed = false;
  return {
    kind: "the run's cluster (simulated restart)",
    url: db.url,
    urlAs: (role) => db.urlAs(role),
    async restart() {
      const t0 = performance.now();
      await admin.unsafe(`alter database "${name}" allow_connections false`);
      try {
        await admin.unsafe(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where datname = $1 and pid <> pg_backend_pid()`,
          [name],
        );
        await new Promise((r) => setTimeout(r, downMs));
      } finally {
        await admin.unsafe(`alter database "${name}" allow_connections true`);
      }
      return { downMs: performance.now() - t0 };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
  };
}

/** The private cluster, or (with the reason) the fallback on the run's cluster. */
export async function faultableDatabase(): Promise<
  { db: FaultableDatabase; fallbackReason: string | null }
> {
  try {
    return { db: await startPrivateCluster(), fallbackReason: null };
  } catch (error) {
    return {
      db: await sharedServerDatabase(),
      fallbackReason: error instanceof Error ? error.message : String(error),
    };
  }
}
