// Private PostgreSQL clusters shaped like hosted Supabase, for the server test run.
//
// startCluster() runs initdb into a temporary folder with `-U supabase_admin` (the bootstrap
// superuser, as on hosted), trust auth, the unix socket inside that folder and a free port on
// 127.0.0.1, and starts it; stop() stops it and deletes the folder. Nothing touches a shared
// server. A cluster left by a killed run (its owner process gone) is stopped and deleted by the
// next startCluster().
//
// initdb refuses to run as root ("cannot be run as root"; the server must not be owned by a
// superuser account), so as root the cluster belongs to the `postgres` system account
// (runuser -u postgres). The binaries are Debian's PostgreSQL 15; PG_BIN overrides the folder.
//
// prepareHostedRoles() and createHostedDatabase() then give it what a hosted project has:
// - roles (tests/fixtures/hosted-roles.sql, then supabase-roles.sql): supabase_admin the
//   superuser; `postgres` LOGIN NOSUPERUSER CREATEDB CREATEROLE BYPASSRLS, INHERIT, a member
//   of anon, authenticated and service_role but not of supabase_auth_admin;
// - per database, as supabase_admin: the database owned by `postgres`, the auth stand-in
//   (auth-schema.sql: `auth` owned by supabase_admin, its tables by supabase_auth_admin, ALL on
//   them and USAGE on the schema for `postgres`), `extensions` (hosted-database.sql);
// - the migrations applied by the real Supabase CLI (`supabase db push --db-url`) logging in as
//   that non-superuser `postgres`, recorded in supabase_migrations.schema_migrations.

import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import {
  applyRoles,
  applyStandIn,
  describePgError,
  postgresExecutor,
} from '../../dev/migrations.ts';
import { freePort } from '../../dev/ports.ts';
import { supabase } from '../../dev/supabase-cli.ts';

const run = promisify(execFile);

/** PostgreSQL's server binaries (Debian's layout); PG_BIN overrides. */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** Every cluster folder is tmpdir()/usync-pg-*, with the owner's pid in owner.pid. */
const PREFIX = 'usync-pg-';
const ROOT = resolve(new URL('../../', import.meta.url).pathname);
const FIXTURES = join(ROOT, 'tests/fixtures');

/** The bootstrap superuser, as on hosted Supabase. */
export const SUPERUSER = 'supabase_admin';

export interface RestartResult {
  /** From the start of the restart until the server accepted connections again. */
  downMs: number;
}

export interface ClusterOptions {
  /** Server settings (`-c name=value`) on top of the speed settings every cluster gets. */
  settings?: Record<string, string | number>;
}

export interface Cluster {
  readonly port: number;
  /** The folder holding data/, server.log and the unix socket. */
  readonly dir: string;
  /** A connection string to `database` (default `postgres`) as `user` (default supabase_admin). */
  url(database?: string, user?: string): string;
  /** pg_ctl restart -m fast: every session ends, the data stays. */
  restart(): Promise<RestartResult>;
  /** Stops the server and deletes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function alive(pid: number): boolean {
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

/** Clusters left by killed runs (their owner process is gone): stopped and deleted. */
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

/** A connection string; `user` and `database` percent-encoded. */
export function pgUrl(port: number, database: string, user: string): string {
  return `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/** initdb and start. Throws (and leaves nothing behind) if either fails. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
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
  // If the process ends before stop() runs, the postmaster must not outlive it.
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
      SUPERUSER,
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
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      ...opts.settings,
    };
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`),
    ].join(' ');
    await pg('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '30', '-o', options]);
    started = true;

    let stopped = false;
    return {
      port,
      dir,
      url: (database = 'postgres', user = SUPERUSER) => pgUrl(port, database, user),
      async restart() {
        const t0 = performance.now();
        await pg('pg_ctl', ['restart', '-D', data, '-l', log, '-w', '-t', '30', '-m', 'fast']);
        return { downMs: performance.now() - t0 };
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', stopSync);
        await pg('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']).catch(() =>
          pg('pg_ctl', ['stop', '-D', data, '-m', 'immediate'])
        ).catch(() => {});
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw error;
  }
}

/** One connection to `url` for the length of `fn`. */
export async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function script(sql: postgres.Sql, file: string): Promise<void> {
  const text = await readFile(join(FIXTURES, file), 'utf8');
  try {
    await sql.begin((tx) => tx.unsafe(text).simple());
  } catch (error) {
    throw new Error(`tests/fixtures/${file}: ${describePgError(error)}`);
  }
}

/** The cluster-wide roles as hosted has them. Once per cluster, before any database. */
export async function prepareHostedRoles(cluster: Cluster): Promise<void> {
  await withSql(cluster.url(), async (sql) => {
    await script(sql, 'hosted-roles.sql');
    await applyRoles(postgresExecutor(sql));
  });
}

export interface HostedDatabaseOptions {
  /** The CLI's --workdir (holds supabase/); default the repository root. */
  workdir?: string;
}

/**
 * A project database: created OWNER postgres, the auth stand-in and `extensions` as
 * supabase_admin, then the migrations by `supabase db push` as `postgres`. On failure the
 * database is dropped and the CLI's output is in the error.
 */
export async function createHostedDatabase(
  cluster: Cluster,
  name: string,
  opts: HostedDatabaseOptions = {},
): Promise<void> {
  const quoted = `"${name.replaceAll('"', '""')}"`;
  await withSql(cluster.url(), (sql) => sql.unsafe(`create database ${quoted} owner postgres`));
  try {
    await withSql(cluster.url(name), async (sql) => {
      await applyStandIn(postgresExecutor(sql), { roles: false });
      await script(sql, 'hosted-database.sql');
    });
    await pushMigrations(cluster.url(name, 'postgres'), opts.workdir);
  } catch (error) {
    await withSql(
      cluster.url(),
      (sql) => sql.unsafe(`drop database if exists ${quoted} with (force)`),
    ).catch(() => {});
    throw error;
  }
}

/**
 * `supabase db push --db-url <url> --yes`, as a developer runs it against a project: the real
 * CLI (the pinned npm package), an empty HOME (no login, no linked project), no telemetry. It
 * applies every migration not yet recorded and records it.
 */
export async function pushMigrations(url: string, workdir: string = ROOT): Promise<string> {
  const dbUrl = `${url}${url.includes('?') ? '&' : '?'}sslmode=disable`;
  const result = await supabase(['db', 'push', '--db-url', dbUrl, '--yes', '--workdir', workdir], {
    cwd: workdir,
  });
  if (result.code !== 0) {
    throw new Error(
      `supabase db push (as postgres, the non-superuser hosted role) failed:\n` +
        `${(result.stderr || result.stdout).trim()}`,
    );
  }
  return `${result.stdout}${result.stderr}`;
}

/** A hosted-shaped cluster with one migrated database, for a suite that needs its own server. */
export async function startHostedCluster(
  database: string,
  opts: ClusterOptions & HostedDatabaseOptions = {},
): Promise<Cluster> {
  const cluster = await startCluster(opts);
  try {
    await prepareHostedRoles(cluster);
    await createHostedDatabase(cluster, database, opts);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
