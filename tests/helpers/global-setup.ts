// vitest globalSetup: prepares, once per run, what every database test file clones.
// - DATABASE_URL set: a private PostgreSQL cluster shaped like hosted Supabase
//   (tests/helpers/cluster.ts), with a template database migrated by the real CLI as the
//   non-superuser `postgres`; stopped and deleted at teardown.
// - DATABASE_URL unset: a PGlite with roles, stand-in and migrations, dumped to a tarball that
//   each test file loads into its own instance (faster than building one from nothing).
//
// DATABASE_URL is a switch here, not a server to use. Its value is not used as a fallback when
// the cluster cannot start, on purpose: on a server someone already runs, `postgres` is the
// superuser everyone logs in as. Making it the hosted non-superuser would lock them out of
// their own server (hosted-roles.sql refuses to), and leaving it a superuser would run every
// ownership, grant and definer test as a role that owns everything, where a migration that
// fails on hosted installs fine and the tests pass for the wrong reason. Better a clear error.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  type Cluster,
  createHostedDatabase,
  PG_BIN,
  prepareHostedRoles,
  startCluster,
} from './cluster.ts';
import { preparePglite } from './db.ts';

/**
 * Server settings. The suite's files run in parallel, each with several pools, and the
 * reliability files open a dozen GoTrue sessions, the function's pool and admin pools at once:
 * 320 connections leave room for many workers. The shared lock table stays the size of a stock
 * server's (100 connections x 64 locks = 320 x 20): a statement that runs out of lock table
 * there runs out here too, however many connections this cluster allows.
 */
const SETTINGS = {
  max_connections: 320,
  max_locks_per_transaction: 20,
  shared_buffers: '128MB',
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = `${Date.now().toString(36)}`;
  project.provide('dbRunId', runId);

  if (process.env.DATABASE_URL) {
    const started = performance.now();
    let cluster: Cluster;
    try {
      cluster = await startCluster({ settings: SETTINGS });
    } catch (error) {
      throw new Error(
        `DATABASE_URL is set, so the server suites run on a private PostgreSQL cluster, and it ` +
          `could not be started from ${PG_BIN} (set PG_BIN to the folder of initdb and ` +
          `pg_ctl): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const template = `usync_tpl_${runId}`;
    try {
      await prepareHostedRoles(cluster);
      await createHostedDatabase(cluster, template);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    if (process.env.DEBUG_DB_HARNESS) {
      console.log(
        `private cluster on port ${cluster.port} with template ${template} ready in ` +
          `${Math.round(performance.now() - started)} ms`,
      );
    }
    project.provide('dbServerUrl', cluster.url());
    project.provide('dbTemplate', template);
    project.provide('pgliteDataDir', null);
    return () => cluster.stop();
  }

  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'usync-pglite-'));
  const file = join(dir, 'pgdata.tar');
  const db = await preparePglite();
  try {
    const dump = await db.dumpDataDir('none');
    await writeFile(file, new Uint8Array(await dump.arrayBuffer()));
  } finally {
    await db.close();
  }
  if (process.env.DEBUG_DB_HARNESS) {
    console.log(`PGlite data dir ready in ${Math.round(performance.now() - started)} ms`);
  }
  project.provide('dbServerUrl', null);
  project.provide('dbTemplate', null);
  project.provide('pgliteDataDir', file);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
