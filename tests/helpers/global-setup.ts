// vitest globalSetup: prepares, once per run, what every database test file clones.
// - DATABASE_URL set: the cluster-wide roles (once, never from parallel workers), then a fresh
//   template database with the stand-in and every migration; dropped at teardown.
// - DATABASE_URL unset: a PGlite with roles, stand-in and migrations, dumped to a tarball that
//   each test file loads into its own instance (faster than building one from nothing).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { applyRoles, migrate, postgresExecutor } from '../../scripts/lib/migrations.ts';
import { preparePglite, withDatabase } from './db.ts';

const PREFIX = /^usync_(?:tpl|t)_[0-9a-z]+_(\d+)(?:_|$)/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Databases left by runs on this machine whose process is gone (killed runs). */
async function dropLeftovers(admin: postgres.Sql): Promise<void> {
  const rows = await admin<{ datname: string }[]>`
    select datname from pg_catalog.pg_database where datname like 'usync\\_%'`;
  for (const { datname } of rows) {
    const pid = Number(PREFIX.exec(datname)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = `${Date.now().toString(36)}`;
  project.provide('dbRunId', runId);
  const url = process.env.DATABASE_URL;

  if (url) {
    const started = performance.now();
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    const template = `usync_tpl_${runId}_${process.pid}`;
    try {
      await dropLeftovers(admin);
      await applyRoles(postgresExecutor(admin));
      await admin.unsafe(`create database "${template}"`);
      const tpl = postgres(withDatabase(url, template), { max: 1, onnotice: () => {} });
      try {
        await migrate(postgresExecutor(tpl), { roles: false });
      } finally {
        await tpl.end({ timeout: 5 });
      }
    } catch (error) {
      await admin.unsafe(`drop database if exists "${template}" with (force)`).catch(() => {});
      await admin.end({ timeout: 5 });
      throw error;
    }
    await admin.end({ timeout: 5 });
    if (process.env.DEBUG_DB_HARNESS) {
      console.log(`template ${template} ready in ${Math.round(performance.now() - started)} ms`);
    }
    project.provide('dbTemplate', template);
    project.provide('pgliteDataDir', null);
    return async () => {
      const end = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await end.unsafe(`drop database if exists "${template}" with (force)`);
      } finally {
        await end.end({ timeout: 5 });
      }
    };
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
  project.provide('dbTemplate', null);
  project.provide('pgliteDataDir', file);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
