// A database this test may restart. The restart must not touch the shared server on 5432
// (other test files run against it in parallel), so the load-and-fault suite starts its own
// PostgreSQL cluster: initdb into a temporary folder, a free loopback port, trust auth, the
// unix socket inside that folder. It gets the Supabase roles, the auth stand-in and every
// migration the way global-setup.ts prepares the template, and is stopped and deleted at the end.
//
// initdb refuses to run as root ("cannot be run as root"; the server must not be owned by a
// superuser account), so as root the cluster belongs to the `postgres` system account
// (runuser -u postgres). Where no cluster can be made at all, the fallback is a database of its
// own on DATABASE_URL, "restarted" by refusing connections (ALTER DATABASE … ALLOW_CONNECTIONS
// false) and terminating every backend on it, then allowing connections again.

import { execFile, execFileSync } from 'node:child_process';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { migrate, postgresExecutor } from '../../scripts/lib/migrations.ts';
import { withDatabase } from '../helpers/db.ts';

const run = promisify(execFile);

/** PostgreSQL's server binaries (Debian's layout); PG_BIN overrides. */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PREFIX = 'usync-pg-';
const DB_NAME = 'usync_load';

export interface RestartResult {
  /** From the start of the restart until the server accepted connections again. */
  downMs: number;
}

/** A migrated database the test may restart, terminate connections on, and throw away. */
export interface FaultableDatabase {
  /** How a restart is done here, for the figures. */
  readonly kind: 'private cluster' | 'shared server (simulated restart)';
  /** Superuser URL of the migrated database. */
  readonly url: string;
  /** The same database, logging in as `role`. */
  urlAs(role: string): string;
  restart(): Promise<RestartResult>;
  /** Stops and deletes what was made. Safe to call twice. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const isRoot = () => process.getuid?.() === 0;

/** A PostgreSQL binary, as the `postgres` account when we are root. */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, bin);
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

async function pg(bin: string, args: string[]): Promise<string> {
  const [cmd, argv] = pgCommand(bin, args);
  try {
    const { stdout } = await run(cmd, argv, { timeout: 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${bin} ${args[0] ?? ''} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** Clusters left running by killed runs: stopped and deleted. */
async function cleanLeftovers(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(owner) && alive(owner)) continue;
    await pg('pg_ctl', ['stop', '-D', join(dir, 'data'), '-m', 'immediate']).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The auth stand-in and the migrations, as global-setup.ts prepares the template; the roles too
 * in a new cluster (on the shared server global-setup made them, once, for every worker).
 */
async function migrateDatabase(url: string, roles: boolean): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await migrate(postgresExecutor(sql), { roles });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** initdb, start, migrate. Throws (and leaves nothing behind) if any step fails. */
export async function startPrivateCluster(): Promise<FaultableDatabase> {
  await cleanLeftovers();
  const dir = await mkdtemp(join(tmpdir(), PREFIX));
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  let started = false;
  const stopSync = () => {
    if (started) {
      const [cmd, argv] = pgCommand('pg_ctl', ['stop', '-D', data, '-m', 'immediate']);
      try {
        execFileSync(cmd, argv, { stdio: 'ignore', timeout: 20_000 });
      } catch { /* already stopped */ }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // If the worker dies before afterAll runs, the postmaster must not outlive it.
  process.once('exit', stopSync);
  try {
    if (isRoot()) {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      await chown(dir, uid, gid);
    }
    await pg('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    const port = await freePort();
    // Durability off: the data is thrown away, and restarts are clean (-m fast).
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    await pg('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '30', '-o', options]);
    started = true;
    const base = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create database ${DB_NAME}`);
    } finally {
      await admin.end({ timeout: 5 });
    }
    const url = withDatabase(base, DB_NAME);
    await migrateDatabase(url, true);

    let closed = false;
    return {
      kind: 'private cluster',
      url,
      urlAs: (role) => withDatabase(base, DB_NAME, role),
      async restart() {
        const t0 = performance.now();
        await pg('pg_ctl', ['restart', '-D', data, '-l', log, '-w', '-t', '30', '-m', 'fast']);
        return { downMs: performance.now() - t0 };
      },
      async close() {
        if (closed) return;
        closed = true;
        process.removeListener('exit', stopSync);
        await pg('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']).catch(() =>
          pg('pg_ctl', ['stop', '-D', data, '-m', 'immediate'])
        );
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw error;
  }
}

/**
 * The fallback: a database of its own on the shared server. A "restart" refuses new
 * connections to it, terminates every session on it, waits `downMs`, and allows connections
 * again; the rest of the server is untouched.
 */
export async function sharedServerDatabase(baseUrl: string, downMs = 500) {
  const name = `usync_t_load_${process.pid}_${Date.now().toString(36)}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = withDatabase(baseUrl, name);
  try {
    await migrateDatabase(url, false);
  } catch (error) {
    await admin.unsafe(`drop database if exists "${name}" with (force)`).catch(() => {});
    await admin.end({ timeout: 5 });
    throw error;
  }
  let closed = false;
  const db: FaultableDatabase = {
    kind: 'shared server (simulated restart)',
    url,
    urlAs: (role) => withDatabase(baseUrl, name, role),
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
        await admin.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
  };
  return db;
}

/** The private cluster, or (with the reason) the shared-server fallback. */
export async function faultableDatabase(
  baseUrl: string,
): Promise<{ db: FaultableDatabase; fallbackReason: string | null }> {
  try {
    return { db: await startPrivateCluster(), fallbackReason: null };
  } catch (error) {
    return {
      db: await sharedServerDatabase(baseUrl),
      fallbackReason: error instanceof Error ? error.message : String(error),
    };
  }
}
