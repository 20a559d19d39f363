// The published package, end to end, in a user's own repository (tests/fixtures/user-project:
// its own config.toml with comments, a todos table referencing auth.users with a policy, a
// function of its own, a function folder of its own). The package is what `npm pack` makes, run
// as `npx --yes --package <tarball> supabase-user-sync <command>`, as it runs once published:
//
//   init → the real `supabase db push` as hosted's non-superuser postgres → sign-ups in GoTrue's
//   statement order → the pgTAP suite init copied → `supabase functions deploy` from the user's
//   tree, booted as the edge runtime boots it (no node_modules) → a second init changes nothing
//   → uninstall → push: the user's own tables and functions are still there and work.
//
// And an upgrade: a project installed by the 0.2.0 package (tests/fixtures/, packed when 0.2.0
// was cut) upgraded by this one, which brings a migration 0.2.0 did not have.
//
// Server only: it needs the hosted-shaped cluster and the real CLI.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUpAnonymous, signUpEmail } from '../../dev/auth/gotrue.ts';
import { hookHeaders, newHookSecret, tokenHookBody } from '../../dev/auth/supabase-auth.ts';
import {
  type BootedUpload,
  bootUpload,
  deployFunction,
  type ManagementApi,
  startManagementApi,
} from '../../dev/supabase-cli.ts';
import { createHostedDatabase, pushMigrations, withSql } from '../helpers/cluster.ts';
import { postgresClient, runCluster, SERVER, serverUrl, testDatabaseName } from '../helpers/db.ts';
import { createPgtap, prove } from '../pgtap/suite.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE_PROJECT = join(ROOT, 'tests/fixtures/user-project');
const RELEASE_0_2_0 = join(ROOT, 'tests/fixtures/supabase-user-sync-0.2.0.tgz');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx --yes --package <tarball> supabase-user-sync …args` in `cwd`. */
function bin(tarball: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(
      'npx',
      ['--yes', '--package', tarball, 'supabase-user-sync', ...args],
      {
        cwd,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: '1' },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Every file of a folder with its sha256: what "changes nothing" is checked against. */
async function treeHash(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return out;
}

const scratch: string[] = [];
const databases: string[] = [];

async function newProject(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'usync-user-project-'));
  scratch.push(dir);
  await cp(FIXTURE_PROJECT, dir, { recursive: true });
  return dir;
}

/** A hosted-shaped project database with the project's migrations pushed by the real CLI. */
async function pushedDatabase(project: string): Promise<string> {
  const name = testDatabaseName('pkg');
  databases.push(name);
  await createHostedDatabase(runCluster(), name, { workdir: project });
  return name;
}

const url = (database: string, user?: string) => runCluster().url(database, user);

async function query<T extends object>(database: string, text: string): Promise<T[]> {
  return await withSql(url(database), async (sql) => [...await sql.unsafe(text)] as T[]);
}

/** GoTrue's connection: every API call one transaction, as supabase_auth_admin. */
function gotrue(database: string) {
  const sql = postgres(url(database, 'supabase_auth_admin'), { max: 2, onnotice: () => {} });
  return {
    db: {
      asAuthAdmin: <T>(fn: (tx: ReturnType<typeof postgresClient>) => Promise<T>) =>
        sql.begin((tx) => fn(postgresClient(tx))) as Promise<T>,
    },
    end: () => sql.end({ timeout: 5 }),
  };
}

let tarball = '';

beforeAll(async () => {
  if (!SERVER) return;
  const dir = await mkdtemp(join(tmpdir(), 'usync-pack-'));
  scratch.push(dir);
  // prepack compiles the CLI (npm run build) before the tarball is made.
  const packed = await new Promise<string>((done, fail) =>
    execFile(
      'npm',
      ['pack', '--pack-destination', dir, '--silent'],
      { cwd: ROOT, timeout: 180_000 },
      (error, stdout) => (error ? fail(error) : done(stdout.trim().split('\n').at(-1)!)),
    )
  );
  tarball = join(dir, packed);
}, 240_000);

afterAll(async () => {
  if (databases.length) {
    await withSql(serverUrl(), async (sql) => {
      for (const name of databases) {
        await sql.unsafe(`drop database if exists "${name}" with (force)`);
      }
    });
  }
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

describe.skipIf(!SERVER)('npx supabase-user-sync in a user project (server only)', () => {
  let project = '';
  let database = '';

  it('init adds the migrations, the function, its config and the pgTAP suite', async () => {
    project = await newProject();
    const before = await treeHash(project);
    const run = await bin(tarball, ['init'], project);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const after = await treeHash(project);
    // Nothing of the user's changed but config.toml, to which sections were added.
    for (const [path, hash] of Object.entries(before)) {
      if (path !== 'supabase/config.toml') expect(after[path], path).toBe(hash);
    }
    const config = await readFile(join(project, 'supabase/config.toml'), 'utf8');
    const original = await readFile(join(FIXTURE_PROJECT, 'supabase/config.toml'), 'utf8');
    expect(config.startsWith(original.trimEnd()) || config.includes(original.trimEnd())).toBe(true);
    expect(config).toContain('[functions.user-sync]');
    const added = Object.keys(after).filter((p) => !(p in before)).sort();
    expect(added).toContain('supabase/functions/user-sync/index.ts');
    expect(added).toContain('supabase/functions/user-sync/deno.json');
    expect(added.some((p) => p.startsWith('supabase/functions/_shared/user-sync/'))).toBe(true);
    expect(added.some((p) => /^supabase\/tests\/database\/.+\.test\.sql$/.test(p))).toBe(true);
    const ours = added.filter((p) => p.startsWith('supabase/migrations/'));
    expect(ours.length).toBeGreaterThan(0);
    // Every migration of ours comes after the project's newest, in our order, with our names.
    for (const file of ours) expect(file > 'supabase/migrations/20250301120000').toBe(true);
    expect(ours.map((f) => f.slice('supabase/migrations/'.length + 15))).toEqual(
      (await readdir(join(ROOT, 'supabase/migrations'))).sort().map((f) => f.slice(15)),
    );
    expect(run.stdout).toMatch(/db push/);
    expect(run.stdout).toMatch(/functions deploy user-sync/);
  }, 300_000);

  it(
    "installs with the real `supabase db push` as hosted postgres, after the project's own",
    async () => {
      database = await pushedDatabase(project);
      const applied = await query<{ name: string }>(
        database,
        'select name from supabase_migrations.schema_migrations order by version',
      );
      expect(applied[0]).toEqual({ name: 'todos' });
      expect(applied.map((r) => r.name)).toContain('user_sync_mapping');
    },
    180_000,
  );

  it("syncs sign-ups made in GoTrue's statement order; the todos still work", async () => {
    const auth = gotrue(database);
    try {
      const ada = await signUpEmail(auth.db, {
        email: 'ada@example.com',
        data: { full_name: 'Ada', role: 'artist' },
        autoconfirm: false,
      });
      const anon = await signUpAnonymous(auth.db);
      expect(
        await query(database, `select id, role, full_name from public.users order by email`),
      ).toEqual([
        { id: ada.id, role: 'artist', full_name: 'Ada' },
        { id: anon.id, role: 'client', full_name: null },
      ]);
      await query(
        database,
        `insert into public.todos (owner, title) values ('${ada.id}', 'Write')`,
      );
      expect(await query(database, `select public.open_todos('${ada.id}') as n`)).toEqual([
        { n: 1 },
      ]);
    } finally {
      await auth.end();
    }
  }, 60_000);

  it('passes the pgTAP suite it copied into the project', async () => {
    await createPgtap(url(database));
    const port = Number(new URL(serverUrl()).port);
    const run = await prove({ port }, database, join(project, 'supabase/tests'));
    expect(run.code, run.output).toBe(0);
    expect(run.failed).toEqual([]);
  }, 180_000);

  describe("deployed from the user's tree by the real CLI", () => {
    let api: ManagementApi;
    let booted: BootedUpload | undefined;
    afterAll(async () => {
      await booted?.remove();
      await api?.close();
    });

    it(
      'uploads the function with its _shared code, and the upload boots without node_modules',
      async () => {
        api = await startManagementApi();
        const upload = await deployFunction(api, project);
        expect(upload.metadata).toMatchObject({
          entrypoint_path: 'supabase/functions/user-sync/index.ts',
          import_map_path: 'supabase/functions/user-sync/deno.json',
          verify_jwt: false,
        });
        const paths = [...upload.files.keys()];
        expect(paths.some((p) => p.startsWith('supabase/functions/_shared/user-sync/'))).toBe(true);
        for (const path of paths) {
          expect(path).toMatch(/^supabase\/functions\/(user-sync|_shared)\//);
        }

        const secret = newHookSecret();
        booted = await bootUpload(upload, {
          SUPABASE_DB_URL: url(database, 'postgres'),
          AUTH_HOOK_SECRET: secret,
        });
        const [user] = await query<{ id: string; email: string }>(
          database,
          `select id, email from auth.users where email = 'ada@example.com'`,
        );
        const body = tokenHookBody(user!);
        const res = await fetch(
          `http://127.0.0.1:${booted.fn.port}/user-sync/hooks/custom-access-token`,
          {
            method: 'POST',
            headers: await hookHeaders(body, { secrets: secret }),
            body,
          },
        );
        expect(res.status).toBe(200);
        expect((await res.json()).claims.user_role).toBe('artist');
      },
      300_000,
    );
  });

  it('a second init changes nothing and says it is installed', async () => {
    const before = await treeHash(project);
    const run = await bin(tarball, ['init'], project);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/already installed/);
    expect(await treeHash(project)).toEqual(before);
  }, 120_000);

  it(
    "uninstall, then push: ours is gone, the user's tables, rows and functions stay and work",
    async () => {
      const run = await bin(tarball, ['uninstall'], project);
      expect(run.code, run.stderr + run.stdout).toBe(0);
      await pushMigrations(url(database, 'postgres'), project);
      expect(
        await query(
          database,
          `select (select count(*)::int from pg_namespace where nspname in ('user_sync', 'user_sync_api')) as schemas,
                (select count(*)::int from pg_trigger where tgrelid = 'auth.users'::regclass
                   and not tgisinternal) as auth_triggers,
                (select count(*)::int from pg_proc where proname in ('sync_user', 'resync_users',
                   'sync_my_user', 'hook_custom_access_token', 'hook_before_user_created')) as functions,
                (select count(*)::int from public.users) as app_rows`,
        ),
      ).toEqual([{ schemas: 0, auth_triggers: 0, functions: 0, app_rows: 2 }]);
      const auth = gotrue(database);
      try {
        const grace = await signUpEmail(auth.db, { email: 'grace@example.com', autoconfirm: true });
        await query(
          database,
          `insert into public.todos (owner, title) values ('${grace.id}', 'Ship')`,
        );
        expect(await query(database, `select public.open_todos('${grace.id}') as n`)).toEqual([
          { n: 1 },
        ]);
      } finally {
        await auth.end();
      }
    },
    180_000,
  );
});

describe.skipIf(!SERVER)('upgrade from the 0.2.0 package (server only)', () => {
  it('adds only the migrations 0.2.0 lacked, and the push applies them', async () => {
    const project = await newProject();
    const init = await bin(RELEASE_0_2_0, ['init'], project);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    const database = await pushedDatabase(project);
    const before = new Set(await readdir(join(project, 'supabase/migrations')));

    const run = await bin(tarball, ['upgrade'], project);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const added = (await readdir(join(project, 'supabase/migrations'))).filter((f) =>
      !before.has(f)
    );
    // Exactly the migration 0.2.0 did not have, after everything already there.
    expect(added.map((f) => f.slice(15))).toEqual(['user_sync_releases.sql']);
    expect(added[0]!.slice(0, 14) > [...before].sort().at(-1)!.slice(0, 14)).toBe(true);
    await pushMigrations(url(database, 'postgres'), project);
    const applied = await query<{ name: string }>(
      database,
      'select name from supabase_migrations.schema_migrations',
    );
    for (const file of added) {
      expect(applied.map((r) => r.name)).toContain(file.replace(/^\d+_/, '').replace(/\.sql$/, ''));
    }
    // And the suite the upgrade brought passes on the upgraded database.
    await createPgtap(url(database));
    const port = Number(new URL(serverUrl()).port);
    const suite = await prove({ port }, database, join(project, 'supabase/tests'));
    expect(suite.code, suite.output).toBe(0);

    const again = await bin(tarball, ['upgrade'], project);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already/);
  }, 600_000);
});
