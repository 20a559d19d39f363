// Applies the Supabase stand-in (where a database has no `auth` schema) and then every
// supabase/migrations/*.sql not applied yet, recording each the way the Supabase CLI does
// (supabase/cli pkg/migration: history.go, file.go, parser/), so the database can later be
// managed by the CLI. Used by `npm run db:migrate`, the local server and the PGlite test run (the
// server test run applies the migrations with the CLI itself: tests/helpers/cluster.ts).
//
// Runs on a `postgres` (postgres.js) client or on a PGlite instance; neither is imported at
// run time, so this module adds no dependency to whoever imports it.

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PGliteInterface, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import type { Sql, TransactionSql } from 'postgres';
import { sqlSegments } from '../cli/sql-scan.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const MIGRATIONS_DIR = `${ROOT}supabase/migrations`;
export const ROLES_SQL = `${ROOT}dev/sql/supabase-roles.sql`;
export const AUTH_SCHEMA_SQL = `${ROOT}dev/sql/auth-schema.sql`;

/** What the runner needs from a connection: run SQL with parameters, or a multi-statement script. */
export interface Queryable {
  query<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  exec(script: string): Promise<void>;
}

export interface Executor extends Queryable {
  readonly kind: 'server' | 'pglite';
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

type PostgresLike = Sql | TransactionSql;

/** A postgres.js pool, or a transaction of one, as a Queryable (the tests use it too). */
export function postgresQueryable(sql: PostgresLike): Queryable {
  return {
    async query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
      // deno-lint-ignore no-explicit-any -- postgres.js types its parameters per registered type
      const rows = await sql.unsafe(text, params as any[]);
      return [...rows] as unknown as T[];
    },
    async exec(script: string): Promise<void> {
      // The simple query protocol accepts several statements in one string.
      await sql.unsafe(script).simple();
    },
  };
}

/** An executor over a postgres.js client (the caller owns it and ends it). */
export function postgresExecutor(sql: Sql): Executor {
  return {
    kind: 'server',
    ...postgresQueryable(sql),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return (await sql.begin((tx) => fn(postgresQueryable(tx)))) as T;
    },
  };
}

function pgliteQueryable(db: PGliteInterface | PGliteTransaction): Queryable {
  return {
    async query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
      return (await db.query<T>(text, params)).rows;
    },
    async exec(script: string): Promise<void> {
      await db.exec(script);
    },
  };
}

/** An executor over a PGlite instance (the caller owns it and closes it). */
export function pgliteExecutor(db: PGliteInterface): Executor {
  return {
    kind: 'pglite',
    ...pgliteQueryable(db),
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(pgliteQueryable(tx)));
    },
  };
}

export interface MigrationFile {
  /** The digits before the first underscore, as the CLI takes them. */
  version: string;
  /** The rest of the file name without `.sql`. */
  name: string;
  file: string;
  path: string;
}

const MIGRATION_FILE = /^([0-9]+)_(.*)\.sql$/;

/** Migration files in name order. Names the CLI would not accept are returned in `ignored`. */
export async function listMigrations(
  dir: string = MIGRATIONS_DIR,
): Promise<{ migrations: MigrationFile[]; ignored: string[] }> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { migrations: [], ignored: [] };
    throw error;
  }
  const migrations: MigrationFile[] = [];
  const ignored: string[] = [];
  for (const file of entries.filter((f) => f.endsWith('.sql')).sort()) {
    const match = MIGRATION_FILE.exec(file);
    if (match?.[1] === undefined || match[2] === undefined) {
      ignored.push(file);
      continue;
    }
    migrations.push({ version: match[1], name: match[2], file, path: `${dir}/${file}` });
  }
  return { migrations, ignored };
}

/**
 * Splits a script into statements the way the CLI does (parser.SplitAndTrim): on `;` outside
 * quotes, dollar quotes, comments, parentheses and BEGIN ATOMIC bodies; each statement trimmed
 * of whitespace and trailing `;`, empty ones dropped. Comments stay with the statement after them.
 */
const WORD = /[A-Za-z_][A-Za-z0-9_$]*/y;

export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let depth = 0; // parentheses
  let atomic = 0; // BEGIN ATOMIC ... END bodies
  const push = (end: number) => {
    const text = script.slice(start, end).replace(/;+$/, '').trim();
    if (text.length > 0) statements.push(text);
    start = end;
  };
  // Only code can end a statement: comments, strings, quoted names and dollar bodies are skipped.
  for (const segment of sqlSegments(script)) {
    if (segment.kind !== 'code') continue;
    let i = segment.start;
    while (i < segment.end) {
      const c = script[i]!;
      if (c === '(') depth++;
      else if (c === ')') depth = Math.max(0, depth - 1);
      else if (c === ';' && depth === 0 && atomic === 0) push(i + 1);
      else if (/[A-Za-z_]/.test(c)) {
        WORD.lastIndex = i;
        const word = WORD.exec(script)?.[0] ?? 'x';
        const lower = word.toLowerCase();
        if (lower === 'atomic' && /\bbegin\s*$/i.test(script.slice(Math.max(0, i - 20), i))) {
          atomic++;
        } else if (lower === 'end' && atomic > 0 && depth === 0) atomic--;
        i += word.length;
        continue;
      }
      i++;
    }
  }
  push(script.length);
  return statements;
}

/** A migration that failed; nothing of it was applied. */
export class MigrationError extends Error {
  constructor(
    readonly file: string,
    readonly statementIndex: number,
    readonly statement: string,
    override readonly cause: unknown,
  ) {
    super(`Migration ${file} failed at statement ${statementIndex + 1}: ${describePgError(cause)}`);
    this.name = 'MigrationError';
  }
}

/** "message (SQLSTATE xxxxx) detail hint" from a postgres.js or PGlite error. */
export function describePgError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const e = error as Error & { code?: unknown; detail?: unknown; hint?: unknown };
  let text = e.message;
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) text += ` (SQLSTATE ${e.code})`;
  if (typeof e.detail === 'string' && e.detail) text += `\nDETAIL: ${e.detail}`;
  if (typeof e.hint === 'string' && e.hint) text += `\nHINT: ${e.hint}`;
  return text;
}

/** Whether the database already has an `auth` schema (Supabase, or the stand-in). */
export async function hasAuthSchema(db: Queryable): Promise<boolean> {
  const rows = await db.query<{ present: boolean }>(
    `select exists (select 1 from pg_catalog.pg_namespace where nspname = 'auth') as present`,
  );
  return rows[0]?.present === true;
}

/** The cluster-wide roles (dev/sql/supabase-roles.sql). Idempotent. */
export async function applyRoles(db: Executor): Promise<void> {
  const script = await readFile(ROLES_SQL, 'utf8');
  await db.transaction((tx) => tx.exec(script));
}

/**
 * The auth stand-in (dev/sql/auth-schema.sql), only where no `auth` schema exists.
 * With `roles: true` the roles are applied first (in PGlite they belong to the instance).
 * Returns whether it applied anything.
 */
export async function applyStandIn(db: Executor, opts: { roles?: boolean } = {}): Promise<boolean> {
  if (await hasAuthSchema(db)) return false;
  if (opts.roles ?? true) await applyRoles(db);
  const script = await readFile(AUTH_SCHEMA_SQL, 'utf8');
  await db.transaction(async (tx) => {
    // Two runners racing: the loser fails here on `create schema auth` and rolls back.
    await tx.exec(script);
  });
  return true;
}

// supabase/cli CreateMigrationTable, statement for statement.
const CREATE_HISTORY = [
  `set lock_timeout = '4s'`,
  `create schema if not exists supabase_migrations`,
  `create table if not exists supabase_migrations.schema_migrations (version text not null primary key)`,
  `alter table supabase_migrations.schema_migrations add column if not exists statements text[]`,
  `alter table supabase_migrations.schema_migrations add column if not exists name text`,
];

export interface MigrateOptions {
  /** Folder of migrations; default supabase/migrations. */
  dir?: string;
  /** Apply the auth stand-in where no `auth` schema exists (default true). */
  standIn?: boolean;
  /** Apply the roles before the stand-in (default true; the server harness does it once). */
  roles?: boolean;
  /** Called before each migration is applied. */
  onApply?: (migration: MigrationFile) => void;
}

export interface MigrateResult {
  standIn: boolean;
  applied: MigrationFile[];
  alreadyApplied: MigrationFile[];
  /** Files in the folder whose names the CLI would not take as migrations. */
  ignored: string[];
}

/**
 * Stand-in (where needed), then every migration not yet in
 * supabase_migrations.schema_migrations, in name order, each with its history row in one
 * transaction. Throws MigrationError at the first failing file; earlier files stay applied.
 */
export async function migrate(db: Executor, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const standIn = (opts.standIn ?? true) && await applyStandIn(db, { roles: opts.roles ?? true });
  const { migrations, ignored } = await listMigrations(opts.dir);

  await db.transaction(async (tx) => {
    for (const statement of CREATE_HISTORY) await tx.query(statement);
  });
  const recorded = new Set(
    (await db.query<{ version: string }>(
      'select version from supabase_migrations.schema_migrations',
    )).map((r) => r.version),
  );

  const applied: MigrationFile[] = [];
  const alreadyApplied: MigrationFile[] = [];
  for (const migration of migrations) {
    if (recorded.has(migration.version)) {
      alreadyApplied.push(migration);
      continue;
    }
    opts.onApply?.(migration);
    const statements = splitStatements(await readFile(migration.path, 'utf8'));
    await db.transaction(async (tx) => {
      for (const [index, statement] of statements.entries()) {
        try {
          // One statement at a time, as the CLI sends them: a file that works here works there.
          await tx.exec(statement);
        } catch (error) {
          throw new MigrationError(migration.file, index, statement, error);
        }
      }
      await tx.query(
        `insert into supabase_migrations.schema_migrations (version, name, statements)
         values ($1, $2, array(select jsonb_array_elements_text($3::text::jsonb)))`,
        [migration.version, migration.name, JSON.stringify(statements)],
      );
    });
    recorded.add(migration.version);
    applied.push(migration);
  }
  return { standIn, applied, alreadyApplied, ignored };
}
