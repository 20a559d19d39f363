// The migration runner (dev/migrations.ts) and `npm run db:migrate`: history recorded
// as the Supabase CLI records it, nothing applied twice, a failing file stops the run with its
// name and SQLSTATE and leaves nothing of itself behind.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Executor,
  listMigrations,
  migrate,
  MigrationError,
  pgliteExecutor,
  postgresExecutor,
  splitStatements,
} from '../../dev/migrations.ts';
import { createServerDatabase, migrationFiles, SERVER, useTestDb } from '../helpers/db.ts';
import { type ProductCopy, productCopy } from '../helpers/product-copy.ts';

const run = promisify(execFile);
const db = useTestDb();
let dbExecutor: Executor;
/** A database with nothing in it: no roles applied by us, no auth schema, no history. */
let fresh: { executor: Executor; url?: string; close(): Promise<void> };
let tmp: string;

beforeAll(async () => {
  dbExecutor = db.kind === 'server'
    ? postgresExecutor(db.connect(undefined, { max: 1 }))
    : pgliteExecutor(db.pglite);
  tmp = await mkdtemp(join(tmpdir(), 'usync-migrate-'));

  if (SERVER) {
    const empty = await createServerDatabase();
    const sql = postgres(empty.url, { max: 1, onnotice: () => {} });
    fresh = {
      executor: postgresExecutor(sql),
      url: empty.url,
      async close() {
        await sql.end({ timeout: 5 });
        await empty.drop();
      },
    };
  } else {
    const pglite = await PGlite.create({ relaxedDurability: true });
    fresh = { executor: pgliteExecutor(pglite), close: () => pglite.close() };
  }
});

afterAll(async () => {
  await fresh?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function history(executor: Executor) {
  return await executor.query<{ version: string; name: string; statements: string[] }>(
    'select version, name, statements from supabase_migrations.schema_migrations order by version',
  );
}

describe('dev/migrations.ts', () => {
  it('on a fresh database: stand-in, every migration, each recorded with its statements', async () => {
    const { migrations } = await listMigrations();
    const onDisk = await migrationFiles();
    expect(onDisk.length).toBeGreaterThan(0);
    expect(migrations.map((m) => m.file)).toEqual(onDisk.map((m) => m.file));
    for (const m of migrations) {
      expect(m.version).toMatch(/^\d{14}$/);
      expect(`${m.version}_${m.name}.sql`).toBe(m.file);
    }
    const result = await migrate(fresh.executor);
    expect(result.standIn).toBe(true);
    expect(result.applied.map((m) => m.file)).toEqual(migrations.map((m) => m.file));
    expect(result.alreadyApplied).toEqual([]);
    expect(result.ignored).toEqual([]);

    const expected = await Promise.all(
      migrations.map(async (m) => ({
        version: m.version,
        name: m.name,
        statements: splitStatements(await readFile(m.path, 'utf8')),
      })),
    );
    expect(expected[0]!.statements.length).toBeGreaterThan(5);
    expect(await history(fresh.executor)).toEqual(expected);
    // The migrations really ran: the table, the trigger and the API functions exist.
    const [objects] = await fresh.executor.query(
      `select to_regclass('public.users') is not null as users,
              to_regprocedure('public.resync_users(boolean, uuid[], integer, uuid)') is not null as resync,
              (select count(*)::int from pg_trigger where tgrelid = 'auth.users'::regclass
                 and tgname like 'user_sync_%') as triggers`,
    );
    expect(objects).toEqual({ users: true, resync: true, triggers: 2 });
  });

  it('a second run applies nothing', async () => {
    const before = await history(fresh.executor);
    const result = await migrate(fresh.executor);
    expect(result.standIn).toBe(false);
    expect(result.applied).toEqual([]);
    expect(result.alreadyApplied.map((m) => m.version)).toEqual(before.map((m) => m.version));
    expect(await history(fresh.executor)).toEqual(before);
  });

  it('a failing migration stops with its file name and SQLSTATE and leaves nothing of it', async () => {
    const dir = join(tmp, 'failing');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, '20990101000000_good.sql'),
      `create table public.mig_good (id integer);\ninsert into public.mig_good values (1);\n`,
    );
    await writeFile(
      join(dir, '20990101000100_bad.sql'),
      `create table public.mig_bad (id integer);
insert into public.mig_bad values (1);
insert into public.mig_good values (2);
select * from public.no_such_table;
`,
    );
    await writeFile(
      join(dir, '20990101000200_never.sql'),
      'create table public.mig_never (id int);',
    );
    const before = await history(dbExecutor);

    let error: unknown;
    try {
      await migrate(dbExecutor, { dir });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MigrationError);
    const failure = error as MigrationError;
    expect({ file: failure.file, index: failure.statementIndex, message: failure.message })
      .toEqual({
        file: '20990101000100_bad.sql',
        index: 3,
        message: 'Migration 20990101000100_bad.sql failed at statement 4: ' +
          'relation "public.no_such_table" does not exist (SQLSTATE 42P01)',
      });

    const [state] = await dbExecutor.query(
      `select to_regclass('public.mig_bad') is null as bad_gone,
              to_regclass('public.mig_never') is null as never_applied,
              (select array_agg(id order by id) from public.mig_good) as good_rows`,
    );
    expect(state).toEqual({ bad_gone: true, never_applied: true, good_rows: [1] });
    expect(await history(dbExecutor)).toEqual([
      ...before,
      {
        version: '20990101000000',
        name: 'good',
        statements: [
          'create table public.mig_good (id integer)',
          'insert into public.mig_good values (1)',
        ],
      },
    ]);
  });
});

// From a copy of the repository without tests/ and bench/: the runner needs neither.
describe('npm run db:migrate', () => {
  let copy: ProductCopy;
  beforeAll(async () => {
    copy = await productCopy();
  });
  afterAll(async () => {
    await copy?.remove();
  });

  it('without DATABASE_URL exits 1 with a clear message', async () => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    let failure: { code?: number; stderr?: string } | undefined;
    try {
      await run('npm', ['run', '--silent', 'db:migrate'], { cwd: copy.dir, env });
    } catch (e) {
      failure = e as { code?: number; stderr?: string };
    }
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain(
      'DATABASE_URL is not set. Set it to the database to migrate, for example\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run db:migrate',
    );
  });

  it.skipIf(!SERVER)(
    'on an up-to-date database (server only) applies nothing and exits 0',
    async () => {
      const { stdout } = await run('npm', ['run', '--silent', 'db:migrate'], {
        cwd: copy.dir,
        env: { ...process.env, DATABASE_URL: fresh.url },
      });
      const applied = (await migrationFiles()).length;
      expect(stdout.trim()).toBe(`nothing to apply (${applied} migrations already applied)`);
    },
  );
});
