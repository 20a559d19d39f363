// Scratch databases for the benchmarks: one migrated template per run (the Supabase stand-in,
// every migration, and the baselines below), cloned for each measurement so every variant
// starts from the same state, and all dropped at the end.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { applyRoles, migrate, postgresExecutor } from '../../dev/migrations.ts';
import { withDatabase } from '../../dev/pg-url.ts';

export { withDatabase };

const PREFIX = 'usync_bench_';
const RUN = `${Date.now().toString(36)}_${process.pid}`;
let counter = 0;

let exported: { root: string; ref: string } | undefined;

/**
 * Measure a git commit (`--ref HEAD`) instead of the working tree, where others may be half-way
 * through a change: its migrations, shared/ and supabase/functions/ are exported to a temporary
 * folder (with a link to node_modules), and everything the benchmark runs comes from there.
 */
export function useCommit(name: string): void {
  // Resolved once: others may commit while the benchmark runs.
  const ref = execFileSync('git', ['rev-parse', '--short', name], { encoding: 'utf8' }).trim();
  const root = mkdtempSync(join(tmpdir(), 'usync-bench-code-'));
  execFileSync('sh', [
    '-c',
    `git archive ${ref} supabase/migrations supabase/functions shared | tar -x -C "${root}"`,
  ]);
  symlinkSync(resolve('node_modules'), join(root, 'node_modules'));
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  exported = { root, ref: `${name} = ${ref}` };
}

/** Where the measured code lives: the exported commit, or the working tree. */
export function codeRoot(): string {
  return exported?.root ?? process.cwd();
}

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error(
      'npm run bench needs DATABASE_URL (a PostgreSQL server it may create databases on), e.g.\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench',
    );
    process.exit(2);
  }
  return url;
}

export function connect(url: string, options: postgres.Options<Record<string, never>> = {}): Sql {
  return postgres(url, { max: 1, onnotice: () => {}, ...options });
}

async function withAdmin<T>(fn: (admin: Sql) => Promise<T>): Promise<T> {
  const admin = connect(databaseUrl());
  try {
    return await fn(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Databases left by benchmark runs whose process is gone (killed runs). */
async function dropLeftovers(admin: Sql): Promise<void> {
  const rows = await admin<{ datname: string }[]>`
    select datname from pg_catalog.pg_database where datname like 'usync\\_bench\\_%'`;
  for (const { datname } of rows) {
    const pid = Number(/^usync_bench_[0-9a-z]+_(\d+)_/.exec(datname)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') {
        await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
      }
    }
  }
}

// The baseline: the hand-made trigger of the app this project generalises (its "Created Auth
// Trigger", an insert-only handle_new_user), verbatim but for the name, so it can sit beside ours. It is created here and attached per variant.
export const SEED_TRIGGER_FUNCTION = `
create function public.seed_handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = public
as $$
begin
  insert into public.users (id, email, full_name, role, created_at, updated_at)
  values (
    new.id,
    new.email,
    coalesce((new.raw_user_meta_data->>'full_name'),
             (new.raw_user_meta_data->>'username'),
             new.email),
    coalesce((new.raw_user_meta_data->>'role'), 'client'),
    now(),
    now()
  );
  return new;
end;
$$`;

export const SEED_TRIGGER = `
create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.seed_handle_new_user()`;

// The seed document's backfill ("Synced Existing Users"), verbatim.
export const SEED_BACKFILL = `
insert into public.users (id, email, full_name, role, created_at, updated_at)
select
  au.id,
  au.email,
  coalesce((au.raw_user_meta_data->>'full_name'),
           (au.raw_user_meta_data->>'username'), au.email),
  coalesce((au.raw_user_meta_data->>'role'), 'client'),
  au.created_at,
  now()
from auth.users au
left join public.users pu on au.id = pu.id
where pu.id is null
on conflict (id) do nothing`;

/** Whether another engineer's work has landed: audit settings, the SQL access-token hook. */
export interface Features {
  audit: boolean;
  sqlHook: boolean;
  migrations: string[];
}

export async function features(sql: Sql): Promise<Features> {
  const [row] = await sql<{ audit: boolean; hook: boolean }[]>`
    select to_regclass('user_sync.audit_settings') is not null as audit,
      to_regprocedure('public.hook_custom_access_token(jsonb)') is not null as hook`;
  const migrations = await sql<{ version: string; name: string }[]>`
    select version, name from supabase_migrations.schema_migrations order by version`;
  return {
    audit: row?.audit ?? false,
    sqlHook: row?.hook ?? false,
    migrations: migrations.map((m) => `${m.version}_${m.name}`),
  };
}

/** A note naming the migrations a measurement ran on (they change while others work). */
export function migrationsNote(f: Features): string {
  const from = exported ? `git ${exported.ref}` : 'the working tree';
  return `Migrations (${from}): ${f.migrations.join(', ')}.`;
}

export interface Scratch {
  /** A fresh database cloned from the template; dropped by drop() or close(). */
  clone(label: string): Promise<{ name: string; url: string }>;
  drop(name: string): Promise<void>;
  url: string;
  features: Features;
  close(): Promise<void>;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The template: roles (cluster-wide, idempotent), the stand-in, every migration, the seed's
 * trigger function and `extra` (a part's own helper SQL). No connection stays open on it, so
 * it can be cloned.
 */
/** What a measured round runs with: a fresh clone, its admin pool and a supabase_auth_admin session. */
export interface RoundContext<V> {
  variant: V;
  round: number;
  db: { name: string; url: string };
  admin: Sql;
  auth: Sql;
}

/**
 * Each round runs every variant, in an order rotated per round (so none always runs first or
 * after the same one), each in a fresh clone of the scratch template, dropped after. Closes the
 * scratch at the end.
 */
export async function inRotatedClones<V extends string>(
  scratch: Scratch,
  label: string,
  rounds: number,
  variants: readonly V[],
  fn: (ctx: RoundContext<V>) => Promise<void>,
): Promise<void> {
  try {
    for (let round = 0; round < rounds; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const variant of order) {
        const db = await scratch.clone(`${label}${variant}`);
        const admin = connect(db.url);
        const auth = connect(withDatabase(db.url, db.name, 'supabase_auth_admin'), { max: 1 });
        try {
          await fn({ variant, round, db, admin, auth });
        } finally {
          await Promise.all([admin.end({ timeout: 5 }), auth.end({ timeout: 5 })]);
          await scratch.drop(db.name);
        }
      }
    }
  } finally {
    await scratch.close();
  }
}

export async function createScratch(extra: string[] = []): Promise<Scratch> {
  const base = databaseUrl();
  const template = `${PREFIX}${RUN}_tpl${++counter}`;
  const created = new Set<string>();
  await withAdmin(async (admin) => {
    await dropLeftovers(admin);
    // Roles are cluster-wide; a test run applying them at the same moment can make ALTER ROLE
    // fail with "tuple concurrently updated": try again once.
    await applyRoles(postgresExecutor(admin)).catch(async () => {
      await new Promise((r) => setTimeout(r, 1000));
      await applyRoles(postgresExecutor(admin));
    });
    await admin.unsafe(`create database ${quote(template)}`);
  });
  created.add(template);
  const url = withDatabase(base, template);
  const tpl = connect(url);
  let found: Features;
  try {
    await migrate(postgresExecutor(tpl), {
      roles: false,
      dir: exported && join(exported.root, 'supabase/migrations'),
    });
    await tpl.unsafe(SEED_TRIGGER_FUNCTION);
    for (const statement of extra) await tpl.unsafe(statement);
    found = await features(tpl);
  } catch (error) {
    await tpl.end({ timeout: 5 });
    await withAdmin((admin) => admin.unsafe(`drop database if exists ${quote(template)}`));
    throw error;
  }
  await tpl.end({ timeout: 5 });

  const drop = async (name: string) => {
    await withAdmin((admin) => admin.unsafe(`drop database if exists ${quote(name)} with (force)`));
    created.delete(name);
  };
  return {
    url,
    features: found,
    async clone(label) {
      const name = `${PREFIX}${RUN}_${label.replace(/[^a-z0-9]/g, '')}${++counter}`;
      await withAdmin((admin) =>
        admin.unsafe(`create database ${quote(name)} template ${quote(template)}`)
      );
      created.add(name);
      return { name, url: withDatabase(base, name) };
    },
    drop,
    async close() {
      for (const name of [...created].reverse()) await drop(name);
    },
  };
}

/** A SQL file of bench/sql/, split on lines holding only `-- ;;` (plpgsql bodies have `;`). */
export async function benchSql(file: string): Promise<string[]> {
  const text = await readFile(new URL(`../sql/${file}`, import.meta.url), 'utf8');
  return text.split(/^-- ;;$/m).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Milliseconds taken by fn. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}
