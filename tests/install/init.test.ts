// `supabase-user-sync init` on throwaway user projects: what it writes, where, and what it leaves
// alone; the refusals (no config.toml, a public.users of the project's own, a file in the way);
// the dry run; a second run. The library is driven as the bin drives it (cli/main.ts run()).

import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { run, USAGE } from '../../cli/main.ts';
import { BLOCK_BEGIN, BLOCK_END } from '../../cli/install/config-toml.ts';
import { init } from '../../cli/install/init.ts';
import { checkFunctionImports, loadPayload, packageRoot } from '../../cli/install/payload.ts';
import { type Marker, sha256 } from '../../cli/install/project.ts';
import { DATABASE_CHECK_SQL } from '../../cli/install/users-table.ts';
import {
  capture,
  cleanup,
  makeProject,
  readTree,
  REPO,
  tempDir,
  tomlAt,
  treeHash,
  USER_CONFIG,
  userProjectFiles,
} from './fixtures/projects.ts';

afterAll(cleanup);

/**
 * Versions one second apart, in order, the first not before `started` (floored to the second)
 * and later than the fixture's newest migration.
 */
function expectClockVersions(paths: string[], started: Date) {
  const versions = paths.map((p) => p.replace(/^.*\//, '').slice(0, 14));
  const clock = started.toISOString().slice(0, 19).replace(/[-:T]/g, '');
  expect(versions[0]! >= clock && versions[0]! > '20250301120000').toBe(true);
  for (let i = 1; i < versions.length; i++) {
    const previous = Date.parse(
      versions[i - 1]!.replace(/(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)/, '$1-$2-$3T$4:$5:$6Z'),
    );
    const current = Date.parse(
      versions[i]!.replace(/(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)/, '$1-$2-$3T$4:$5:$6Z'),
    );
    expect(current - previous).toBe(1000);
  }
}

const ourMigrations = async () =>
  (await readdir(join(REPO, 'supabase/migrations'))).filter((f) => /^\d{14}_.+\.sql$/.test(f))
    .sort();

async function initProject(dir: string, extra: string[] = []) {
  const c = capture();
  const code = await run(['init', '--project', dir, ...extra], { io: c.io });
  return { code, ...c };
}

describe('the payload', () => {
  it('is found from the installer module, in the repository and as the compiled package', async () => {
    expect(packageRoot()).toBe(REPO);
    // dist/cli/install/x.js, three folders below the package root, under a node_modules whose
    // own package.json is someone else's.
    const pkg = await tempDir('pkg');
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'their-app' }));
    const ours = join(pkg, 'node_modules/supabase-user-sync');
    await mkdir(join(ours, 'dist/cli/install'), { recursive: true });
    await writeFile(join(ours, 'package.json'), JSON.stringify({ name: 'supabase-user-sync' }));
    await writeFile(join(ours, 'dist/package.json'), JSON.stringify({ type: 'module' }));
    expect(packageRoot(`file://${ours}/dist/cli/install/payload.js`)).toBe(ours);
  });

  it('holds our migrations, the function with its imports rewritten, shared/ and the pgTAP suite', async () => {
    const payload = await loadPayload();
    const manifest = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(payload.version).toBe(manifest.version);
    expect(payload.migrations.map((m) => m.file)).toEqual(await ourMigrations());
    const entry = payload.files.find((f) => f.path === 'supabase/functions/user-sync/index.ts')!;
    expect(entry.content).not.toContain('../../../shared');
    expect(entry.content).toContain("from '../_shared/user-sync/app.ts'");
    const shared = (await readdir(join(REPO, 'shared'), { recursive: true }))
      .filter((f) => f.endsWith('.ts')).map((f) => `supabase/functions/_shared/user-sync/${f}`)
      .sort();
    expect(payload.files.filter((f) => f.path.includes('/_shared/')).map((f) => f.path).sort())
      .toEqual(shared);
    // shared/ needs no rewrite: its files import each other relatively, and packages by name.
    for (const f of payload.files.filter((f) => f.path.includes('/_shared/'))) {
      expect(f.content).toBe(
        await readFile(join(REPO, 'shared', f.path.split('/_shared/user-sync/')[1]!), 'utf8'),
      );
    }
    expect(() => checkFunctionImports(payload.files)).not.toThrow();
    const pgtap = (await readdir(join(REPO, 'supabase/tests/database'))).filter((f) =>
      f.endsWith('.test.sql')
    );
    expect(
      payload.files.filter((f) => f.path.startsWith('supabase/tests/')).map((f) => f.path).sort(),
    )
      .toEqual(pgtap.map((f) => `supabase/tests/database/user_sync_${f}`).sort());
  });

  it('reports an import the installed function could not resolve', async () => {
    const payload = await loadPayload();
    const broken = payload.files.map((f) =>
      f.path.endsWith('/app.ts')
        ? { ...f, content: `import x from '../../elsewhere.ts';\nimport 'left-pad';\n${f.content}` }
        : f
    );
    expect(() => checkFunctionImports(broken)).toThrow(/elsewhere\.ts[\s\S]*left-pad/);
  });
});

describe('init on a user project', () => {
  it('writes our migrations after the newest, the function, the pgTAP suite, the config and the marker', async () => {
    const dir = await makeProject();
    const before = await readTree(dir);
    const started = new Date();
    const { code, out, err } = await initProject(dir);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const after = await readTree(dir);

    // The user's files are untouched, but config.toml.
    for (const [path, content] of Object.entries(before)) {
      if (path !== 'supabase/config.toml') expect(after[path], path).toBe(content);
    }

    // Migrations: after the newest (20250301120000) and not before the clock, one second apart,
    // in our order, with our names.
    const ours = await ourMigrations();
    const added = Object.keys(after).filter((p) =>
      p.startsWith('supabase/migrations/') && !(p in before)
    ).sort();
    expect(added.map((p) => p.slice('supabase/migrations/'.length + 15))).toEqual(
      ours.map((f) => f.slice(15)),
    );
    expectClockVersions(added, started);
    for (const [i, path] of added.entries()) {
      expect(after[path]).toBe(await readFile(join(REPO, 'supabase/migrations', ours[i]!), 'utf8'));
    }

    // The function, as Supabase projects keep function code.
    expect(after['supabase/functions/user-sync/deno.json']).toBe(
      await readFile(join(REPO, 'supabase/functions/user-sync/deno.json'), 'utf8'),
    );
    expect(after['supabase/functions/user-sync/index.ts']).toContain(
      "'../_shared/user-sync/config.ts'",
    );
    expect(after['supabase/functions/_shared/user-sync/app.ts']).toBe(
      await readFile(join(REPO, 'shared/app.ts'), 'utf8'),
    );
    expect(after['supabase/functions/_shared/user-sync/routes/hooks.ts']).toBeDefined();
    expect(after['supabase/tests/database/user_sync_01_install.test.sql']).toBe(
      await readFile(join(REPO, 'supabase/tests/database/01_install.test.sql'), 'utf8'),
    );

    // Exactly these files, and the marker records each with its hash.
    const payload = await loadPayload();
    const expected = [
      ...Object.keys(before),
      ...added,
      ...payload.files.map((f) => f.path),
      'supabase/user-sync.json',
    ].sort();
    expect(Object.keys(after).sort()).toEqual(expected);
    const marker = JSON.parse(after['supabase/user-sync.json']!) as Marker;
    expect(marker.package).toBe('supabase-user-sync');
    expect(marker.version).toBe(payload.version);
    expect(marker.migrations.map((m) => [m.ours, `supabase/migrations/${m.file}`])).toEqual(
      ours.map((f, i) => [f, added[i]]),
    );
    for (const m of marker.migrations) {
      expect(m.sha256).toBe(sha256(after[`supabase/migrations/${m.file}`]!));
    }
    expect(Object.keys(marker.files).sort()).toEqual(payload.files.map((f) => f.path).sort());
    for (const [path, hash] of Object.entries(marker.files)) {
      expect(hash, path).toBe(sha256(after[path]!));
    }

    expect(out.join('\n')).toMatch(
      /npx supabase secrets set AUTH_HOOK_SECRET=… USER_SYNC_WEBHOOK_SECRET=… USER_SYNC_ADMIN_TOKEN=…/,
    );
    expect(out.join('\n')).toContain('npx supabase db push');
    expect(out.join('\n')).toContain('npx supabase functions deploy user-sync --no-verify-jwt');
    expect(out.join('\n')).toContain(
      'https://<ref>.supabase.co/functions/v1/user-sync/hooks/custom-access-token',
    );
    expect(out.join('\n')).toContain('select public.resync_users(p_dry_run => true);');
    expect(out.join('\n')).toContain('npx supabase test db');
  });

  it('keeps every line of config.toml, in order, and adds tables that parse', async () => {
    const dir = await makeProject();
    expect((await initProject(dir)).code).toBe(0);
    const config = await readFile(join(dir, 'supabase/config.toml'), 'utf8');
    // Byte for byte: the original is the start of the new file.
    expect(config.startsWith(USER_CONFIG)).toBe(true);
    expect(tomlAt(config, 'functions.user-sync')).toEqual({
      enabled: true,
      verify_jwt: false,
      import_map: './functions/user-sync/deno.json',
      entrypoint: './functions/user-sync/index.ts',
    });
    expect(tomlAt(config, 'functions.hello')).toEqual(tomlAt(USER_CONFIG, 'functions.hello'));
    expect(tomlAt(config, 'api.schemas')).toEqual(['public', 'graphql_public']);
    expect(tomlAt(config, 'auth.site_url')).toBe('http://127.0.0.1:3000');
    expect(tomlAt(config, 'auth.email.enable_confirmations')).toBe(false);
    for (const hook of ['before_user_created', 'custom_access_token']) {
      expect(tomlAt(config, `auth.hook.${hook}.enabled`)).toBe(false);
      expect(tomlAt(config, `auth.hook.${hook}.secrets`)).toBe('env(AUTH_HOOK_SECRET)');
      expect(tomlAt(config, `auth.hook.${hook}.uri`)).toMatch(
        /^http:\/\/host\.docker\.internal:54321\/functions\/v1\/user-sync\/hooks\//,
      );
    }
    const added = config.slice(USER_CONFIG.length);
    expect(added).toContain(BLOCK_BEGIN);
    expect(added.trimEnd().endsWith(BLOCK_END)).toBe(true);
    expect(added).toContain('# uri = "pg-functions://postgres/public/hook_custom_access_token"');
  });

  it('leaves a hook section the user has, says so, and adds the other', async () => {
    const mine =
      `${USER_CONFIG}\n[auth.hook.custom_access_token]\nenabled = true\nuri = "pg-functions://postgres/public/my_hook"\n`;
    const dir = await makeProject(userProjectFiles({ 'supabase/config.toml': mine }));
    const { code, out } = await initProject(dir);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(
      /already has \[auth\.hook\.custom_access_token\]: left as it is/,
    );
    const config = await readFile(join(dir, 'supabase/config.toml'), 'utf8');
    expect(config.startsWith(mine)).toBe(true);
    expect(tomlAt(config, 'auth.hook.custom_access_token.uri')).toBe(
      'pg-functions://postgres/public/my_hook',
    );
    expect(tomlAt(config, 'auth.hook.before_user_created.enabled')).toBe(false);
    expect(config.match(/\[auth\.hook\.custom_access_token\]/g)).toHaveLength(1);
  });

  it('keeps CRLF line endings and a file without a final newline', async () => {
    const crlf = USER_CONFIG.trimEnd().replaceAll('\n', '\r\n');
    const dir = await makeProject(userProjectFiles({ 'supabase/config.toml': crlf }));
    expect((await initProject(dir)).code).toBe(0);
    const config = await readFile(join(dir, 'supabase/config.toml'), 'utf8');
    expect(config.startsWith(crlf)).toBe(true);
    expect(config.slice(crlf.length).replaceAll('\r\n', '')).not.toContain('\n');
    expect(tomlAt(config, 'functions.user-sync.verify_jwt')).toBe(false);
  });

  // Not our own versions: they may lie ahead of the user's clock, and then the next migration
  // `supabase migration new` names would run before ours (an `alter table public.users` fails).
  it('starts at the clock in a project without migrations', async () => {
    const files = userProjectFiles();
    delete files['supabase/migrations/20250101000000_todos.sql'];
    delete files['supabase/migrations/20250301120000_todo_counts.sql'];
    const dir = await makeProject(files);
    const started = new Date();
    expect((await initProject(dir)).code).toBe(0);
    const finished = new Date();
    const written = (await readdir(join(dir, 'supabase/migrations'))).sort();
    // Not later than the clock either: the first version is the time init ran.
    const stamp = (d: Date) => d.toISOString().slice(0, 19).replace(/[-:T]/g, '');
    expect(written[0]!.slice(0, 14) <= stamp(finished)).toBe(true);
    expect(written.map((f) => f.slice(15))).toEqual(
      (await ourMigrations()).map((f) => f.slice(15)),
    );
    expectClockVersions(written, started);
  });

  it('a second init changes nothing and says what is installed', async () => {
    const dir = await makeProject();
    expect((await initProject(dir)).code).toBe(0);
    const hash = await treeHash(dir);
    const again = await initProject(dir);
    expect(again.code).toBe(0);
    expect(again.out.join('\n')).toMatch(
      /^supabase-user-sync \d+\.\d+\.\d+\S* is already installed/,
    );
    expect(await treeHash(dir)).toBe(hash);
  });

  it('--dry-run lists every file and the config diff, and writes nothing', async () => {
    const dir = await makeProject();
    const hash = await treeHash(dir);
    const { code, out } = await initProject(dir, ['--dry-run']);
    expect(code).toBe(0);
    expect(await treeHash(dir)).toBe(hash);
    const text = out.join('\n');
    const payload = await loadPayload();
    for (const f of payload.files) expect(text).toContain(`create  ${f.path}`);
    expect(text).toMatch(/create {2}supabase\/migrations\/\d{14}_user_sync_setup\.sql/);
    expect(text).toContain('update  supabase/config.toml');
    expect(text).toContain('create  supabase/user-sync.json');
    expect(text).toContain('+++ b/supabase/config.toml');
    expect(text).toContain('+[functions.user-sync]');
    expect(text).not.toContain('Next steps');
  });
});

describe('init refuses', () => {
  it('a folder without supabase/config.toml (exit 2)', async () => {
    const dir = await tempDir('empty');
    const { code, err } = await initProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('no supabase/config.toml in');
  });

  it.each([
    ['create table public.users (id uuid primary key);'],
    ['CREATE TABLE IF NOT EXISTS "public"."users" (id uuid);'],
    ['create table Users (id uuid);'],
    ['create table if not exists PUBLIC . USERS(id uuid);'],
    ['create table public.profiles (id uuid);\nalter table public.profiles rename to users;'],
  ])("a public.users of the project's own: %s (exit 2, docs/migrating.md)", async (sql) => {
    const dir = await makeProject(
      userProjectFiles({ 'supabase/migrations/20250201000000_users.sql': `-- theirs\n${sql}\n` }),
    );
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(
      /supabase\/migrations\/20250201000000_users\.sql \(line [23]\) has a public\.users of its own/,
    );
    expect(err.join('\n')).toContain('docs/migrating.md');
    expect(err.join('\n')).toContain(
      'https://github.com/supabase-user-sync/supabase-user-sync/blob/main/docs/migrating.md',
    );
    expect(await treeHash(dir)).toBe(hash);
  });

  it.each([
    ['-- create table public.users (id uuid);\n/* create table users (x int); */ select 1;'],
    ["comment on table public.todos is 'not create table public.users';"],
    ['create table public.users_profile (id uuid);\ncreate table auth_x.users (id uuid);'],
    ['create table "Users" (id uuid);'],
    ['create temp table users (id uuid);'],
    // docs/migrating.md, step 2: the old table moved aside before ours.
    ['create table public.users (id uuid);\nalter table public.users rename to users_before_sync;'],
    ['create table public.users (id uuid);\ndrop table if exists public.todos_x, public.users cascade;'],
  ])('but not a users table that is gone or is not public.users: %s', async (sql) => {
    const dir = await makeProject(
      userProjectFiles({ 'supabase/migrations/20250201000000_users.sql': `${sql}\n` }),
    );
    const { code, err } = await initProject(dir, ['--dry-run']);
    expect(err).toEqual([]);
    expect(code).toBe(0);
  });

  it('a public.users in the database at --db-url (exit 2); an empty one passes', async () => {
    const db = await PGlite.create();
    try {
      const checkDatabase = async () => {
        const [row] =
          (await db.query<{ has_users: boolean; has_schema: boolean }>(DATABASE_CHECK_SQL)).rows;
        return { hasUsers: row!.has_users, hasSchema: row!.has_schema };
      };
      const dir = await makeProject();
      const io = capture();
      expect(
        await init({ project: dir, dryRun: true, dbUrl: 'postgres://x', checkDatabase, io: io.io }),
      ).toBe(0);

      await db.exec('create table public.users (id uuid primary key)');
      const refused = capture();
      expect(await init({ project: dir, dbUrl: 'postgres://x', checkDatabase, io: refused.io }))
        .toBe(2);
      expect(refused.err.join('\n')).toMatch(
        /The database at --db-url has a public\.users of its own.*docs\/migrating\.md/s,
      );

      await db.exec('create schema user_sync');
      const installed = capture();
      expect(await init({ project: dir, dbUrl: 'postgres://x', checkDatabase, io: installed.io }))
        .toBe(2);
      expect(installed.err.join('\n')).toContain('the database already has the schema user_sync');
    } finally {
      await db.close();
    }
  });

  it('a database it cannot reach (exit 1), without writing', async () => {
    const dir = await makeProject();
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir, [
      '--db-url',
      'postgres://nobody@127.0.0.1:1/postgres',
    ]);
    expect(code).toBe(1);
    expect(err.join('\n')).toContain('could not ask the database at --db-url');
    expect(await treeHash(dir)).toBe(hash);
  });

  it("a [functions.user-sync] of the project's own (exit 2)", async () => {
    const config = `${USER_CONFIG}\n[functions.user-sync]\nverify_jwt = true\n`;
    const dir = await makeProject(userProjectFiles({ 'supabase/config.toml': config }));
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('already has a [functions.user-sync] table');
    expect(await treeHash(dir)).toBe(hash);
  });

  it('to overwrite a file (exit 2), and writes nothing at all', async () => {
    const dir = await makeProject(userProjectFiles({
      'supabase/functions/user-sync/index.ts': '// theirs\n',
      'supabase/tests/database/user_sync_05_resync.test.sql': '-- theirs\n',
    }));
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('supabase/functions/user-sync/index.ts');
    expect(err.join('\n')).toContain('supabase/tests/database/user_sync_05_resync.test.sql');
    expect(await treeHash(dir)).toBe(hash);
  });

  it.each<[string, (dir: string) => Promise<void>, string]>([
    [
      'a migration that is a dangling symlink',
      (dir) => symlink('nowhere.sql', join(dir, 'supabase/migrations/20250201000000_gone.sql')),
      'cannot read supabase/migrations/20250201000000_gone.sql: it is a symbolic link to nothing',
    ],
    [
      'a loop of symlinks',
      async (dir) => {
        await symlink(
          '20250201000001_b.sql',
          join(dir, 'supabase/migrations/20250201000000_a.sql'),
        );
        await symlink(
          '20250201000000_a.sql',
          join(dir, 'supabase/migrations/20250201000001_b.sql'),
        );
      },
      'cannot read supabase/migrations/20250201000000_a.sql: it is a loop of symbolic links',
    ],
    [
      'a folder named *.sql',
      (dir) => mkdir(join(dir, 'supabase/migrations/20250201000000_dir.sql')),
      'cannot read supabase/migrations/20250201000000_dir.sql: it is a folder, not a file',
    ],
    [
      'supabase/migrations that is a file',
      async (dir) => {
        await rm(join(dir, 'supabase/migrations'), { recursive: true });
        await writeFile(join(dir, 'supabase/migrations'), '');
      },
      'cannot read supabase/migrations: it is a file, not a folder',
    ],
    [
      'config.toml that is a folder',
      async (dir) => {
        await rm(join(dir, 'supabase/config.toml'));
        await mkdir(join(dir, 'supabase/config.toml'));
      },
      'cannot read supabase/config.toml: it is a folder, not a file',
    ],
  ])('%s: names the path (exit 2), without writing', async (_name, damage, message) => {
    const dir = await makeProject();
    await damage(dir);
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir);
    expect(err.join('\n')).toContain(`supabase-user-sync init: ${message}`);
    expect(code).toBe(2);
    expect(await treeHash(dir)).toBe(hash);
  });

  it('a dangling symlink where it would write a file: in the list of files in the way (exit 2)', async () => {
    const dir = await makeProject();
    await mkdir(join(dir, 'supabase/functions/user-sync'), { recursive: true });
    await symlink('gone.ts', join(dir, 'supabase/functions/user-sync/index.ts'));
    const hash = await treeHash(dir);
    const { code, err } = await initProject(dir);
    expect(err.join('\n')).toContain(
      'these files exist already and init never overwrites a file:\n  supabase/functions/user-sync/index.ts\n',
    );
    expect(code).toBe(2);
    expect(await treeHash(dir)).toBe(hash);
  });

  it.each(['', '  '])(
    '--db-url %j: a usage error (exit 2), not the default database',
    async (url) => {
      const dir = await makeProject();
      const hash = await treeHash(dir);
      const { code, err } = await initProject(dir, ['--db-url', url]);
      expect(err.join('\n')).toContain('supabase-user-sync init: --db-url needs a postgres:// URL');
      expect(code).toBe(2);
      expect(await treeHash(dir)).toBe(hash);
    },
  );

  it('a config.toml that is not TOML (exit 2)', async () => {
    const dir = await makeProject(userProjectFiles({ 'supabase/config.toml': '[api\nport = 1\n' }));
    const { code, err } = await initProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('supabase/config.toml is not valid TOML');
  });
});

describe('the bin', () => {
  it('prints its usage, its version, and refuses what it does not know (exit 2)', async () => {
    const help = capture();
    expect(await run(['--help'], { io: help.io })).toBe(0);
    expect(help.out.join('\n')).toBe(USAGE);
    for (
      const command of [
        'init',
        'upgrade',
        'uninstall',
        'resync',
        '--dry-run',
        '--db-url',
        '--drop-data',
      ]
    ) {
      expect(USAGE).toContain(command);
    }
    const version = capture();
    expect(await run(['--version'], { io: version.io })).toBe(0);
    expect(version.out).toEqual([(await loadPayload()).version]);
    const none = capture();
    expect(await run([], { io: none.io })).toBe(2);
    const unknown = capture();
    expect(await run(['instal'], { io: unknown.io })).toBe(2);
    expect(unknown.err.join('\n')).toContain('unknown command "instal"');
    const flag = capture();
    expect(await run(['init', '--drop-data'], { io: flag.io })).toBe(2);
    expect(flag.err.join('\n')).toContain("Unknown option '--drop-data'");
  });

  // `resync --help` exits 0 with the resync CLI's own usage; an unknown command would exit 2.
  it('hands resync to the resync CLI', async () => {
    const printed: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => void printed.push(args.join(' '));
    try {
      expect(await run(['resync', '--help'])).toBe(0);
    } finally {
      console.log = log;
    }
    expect(printed.join('\n')).toContain('Usage: npx supabase-user-sync resync --url');
  });
});
