// `supabase-user-sync uninstall`: the files it takes back (only those the user left unchanged),
// config.toml as it was before init, and above all its migration. That one is applied after the
// user's migrations and ours to a real database (PGlite; on a server run also the hosted-shaped
// cluster, pushed by the real CLI as the non-superuser `postgres`), and the database's catalog is
// compared with the one the user's migrations alone build: nothing of ours may remain but
// public.users and public.user_sync_audit with their rows (nothing at all with --drop-data), and
// the user's own table, policy and function still work.

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, pgliteExecutor } from '../../dev/migrations.ts';
import { init } from '../../cli/install/init.ts';
import { uninstall } from '../../cli/install/uninstall.ts';
import { createHostedDatabase, pushMigrations } from '../helpers/cluster.ts';
import {
  type DbClient,
  dropServerDatabase,
  insertAuthUser,
  postgresClient,
  preRequest,
  runCluster,
  SERVER,
  testDatabaseName,
  userClaims,
} from '../helpers/db.ts';
import {
  capture,
  cleanup,
  makeProject,
  readTree,
  tomlAt,
  treeHash,
  USER_CONFIG,
} from './fixtures/projects.ts';

afterAll(cleanup);

// Before every migration here, so the uninstall's version comes from the newest, not the clock
// (versionsAfter takes the later of the two; tests/install/parts.test.ts covers the clock).
const NOW = new Date('2020-01-01T00:00:00Z');

async function initProject(dir: string): Promise<void> {
  const c = capture();
  expect(await init({ project: dir, io: c.io }), c.text()).toBe(0);
}

async function uninstallProject(dir: string, opts: { dropData?: boolean; dryRun?: boolean } = {}) {
  const c = capture();
  const code = await uninstall({ project: dir, now: NOW, io: c.io, ...opts });
  return { code, ...c };
}

/** The uninstall migration in a tree: the one file named so. */
const uninstallFile = (tree: Record<string, string>) =>
  Object.keys(tree).find((p) => /^supabase\/migrations\/\d{14}_user_sync_uninstall\.sql$/.test(p))!;

describe('uninstall, in the project', () => {
  it('writes its migration after the newest and takes back our files, config and marker', async () => {
    const dir = await makeProject();
    const original = await readTree(dir);
    await initProject(dir);
    const installed = await readTree(dir);
    const { code, out, err } = await uninstallProject(dir);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const after = await readTree(dir);
    const UNINSTALL = uninstallFile(after);
    // One second after the newest migration, the project's and ours.
    const newest = Object.keys(installed).filter((p) => p.startsWith('supabase/migrations/'))
      .map((p) => p.slice('supabase/migrations/'.length, 'supabase/migrations/'.length + 14))
      .sort().at(-1)!;
    const asDate = (v: string) =>
      Date.parse(v.replace(/(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)/, '$1-$2-$3T$4:$5:$6Z'));
    expect(
      asDate(UNINSTALL.slice('supabase/migrations/'.length, -'_user_sync_uninstall.sql'.length)),
    )
      .toBe(asDate(newest) + 1000);

    // Left: the user's files as they were, our migrations (history) and the uninstall migration.
    const ours = Object.keys(installed).filter((p) =>
      p.startsWith('supabase/migrations/') && !(p in original)
    );
    expect(Object.keys(after).sort()).toEqual(
      [
        ...Object.keys(original),
        ...ours,
        UNINSTALL,
      ].sort(),
    );
    for (const [path, content] of Object.entries(original)) expect(after[path], path).toBe(content);
    for (const path of ours) expect(after[path]).toBe(installed[path]);
    expect(after[UNINSTALL]).toContain(
      'drop schema if exists user_sync cascade;',
    );
    // The folders we made are gone; the user's are not.
    expect(await readdir(join(dir, 'supabase/functions'))).toEqual(['hello']);
    expect(await readdir(join(dir, 'supabase/tests/database'))).toEqual([]);

    const text = out.join('\n');
    expect(text).toContain('Unwire the Auth hooks');
    expect(text).toContain('npx supabase db push');
    expect(text).toContain('npx supabase functions delete user-sync');
  });

  it('keeps the files the user changed, and says so', async () => {
    const dir = await makeProject();
    await initProject(dir);
    await writeFile(
      join(dir, 'supabase/functions/_shared/user-sync/roles-extra.ts'),
      '// theirs\n',
    );
    await writeFile(join(dir, 'supabase/functions/_shared/user-sync/config.ts'), '// edited\n');
    const { code, out } = await uninstallProject(dir);
    expect(code).toBe(0);
    expect(out.join('\n')).toContain(
      'supabase/functions/_shared/user-sync/config.ts was changed after it was installed, so it stays',
    );
    const left = Object.keys(await readTree(dir)).filter((p) =>
      p.includes('/_shared/') || p.includes('/user-sync/')
    );
    expect(left.sort()).toEqual([
      'supabase/functions/_shared/user-sync/config.ts',
      'supabase/functions/_shared/user-sync/roles-extra.ts',
    ]);
  });

  it('takes only [functions.user-sync] out of a block the user edited, keeping the rest', async () => {
    const dir = await makeProject();
    await initProject(dir);
    const path = join(dir, 'supabase/config.toml');
    const edited = (await readFile(path, 'utf8')).replace(
      /(\[auth\.hook\.before_user_created\]\n)enabled = false/,
      '$1enabled = true',
    );
    await writeFile(path, edited);
    const { code, out } = await uninstallProject(dir);
    expect(code).toBe(0);
    const config = await readFile(path, 'utf8');
    expect(tomlAt(config, 'functions.user-sync')).toBeUndefined();
    expect(tomlAt(config, 'functions.hello')).toEqual({
      verify_jwt: true,
      import_map: './functions/hello/deno.json',
    });
    expect(tomlAt(config, 'auth.hook.before_user_created.enabled')).toBe(true);
    expect(config.startsWith(USER_CONFIG)).toBe(true);
    expect(out.join('\n')).toContain('was edited, so only [functions.user-sync] was taken out');
    expect(out.join('\n')).toMatch(
      /\[auth\.hook\.before_user_created\] in supabase\/config\.toml still points at supabase-user-sync/,
    );
  });

  it('--dry-run writes nothing', async () => {
    const dir = await makeProject();
    await initProject(dir);
    const hash = await treeHash(dir);
    const { code, out } = await uninstallProject(dir, { dryRun: true });
    expect(code).toBe(0);
    expect(await treeHash(dir)).toBe(hash);
    expect(out.join('\n')).toMatch(
      /create {2}supabase\/migrations\/\d{14}_user_sync_uninstall\.sql/,
    );
    expect(out.join('\n')).toContain('delete  supabase/functions/user-sync/index.ts');
    expect(out.join('\n')).toContain('-[functions.user-sync]');
  });

  it('leaves a project init takes again after --drop-data, and refuses while public.users stays', async () => {
    const kept = await makeProject();
    await initProject(kept);
    expect((await uninstallProject(kept)).code).toBe(0);
    const again = capture();
    expect(await init({ project: kept, io: again.io })).toBe(2);
    expect(again.err.join('\n')).toMatch(
      /public\.users is still there from an earlier supabase-user-sync install \(supabase\/migrations\/\d{14}_user_sync_users_table\.sql\), kept with its rows by `uninstall` without --drop-data/,
    );

    const dropped = await makeProject();
    await initProject(dropped);
    expect((await uninstallProject(dropped, { dropData: true })).code).toBe(0);
    await initProject(dropped);
    const migrations = await readdir(join(dropped, 'supabase/migrations'));
    expect(migrations.filter((f) => f.endsWith('_user_sync_setup.sql'))).toHaveLength(2);
  });

  it('refuses without an install (exit 2)', async () => {
    const dir = await makeProject();
    const { code, err } = await uninstallProject(dir);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('not installed here');
  });
});

// ------------------------------------------------------------------ the migration, in a database

/** Everything a migration can leave behind, one line per object. */
const CATALOG_SQL = `
select item from (
  select 'schema ' || n.nspname as item from pg_catalog.pg_namespace n
   where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
  union all
  select 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text from pg_catalog.pg_class c
   where c.relnamespace::regnamespace::text !~ '^(pg_|information_schema)'
  union all
  select 'function ' || p.oid::regprocedure::text from pg_catalog.pg_proc p
   where p.pronamespace::regnamespace::text !~ '^(pg_|information_schema)'
  union all
  select 'type ' || t.oid::regtype::text from pg_catalog.pg_type t
   where t.typnamespace::regnamespace::text !~ '^(pg_|information_schema)'
  union all
  select 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text from pg_catalog.pg_trigger t
   where not t.tgisinternal
  union all
  select 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text from pg_catalog.pg_policy p
  union all
  select 'constraint ' || c.conname || ' on ' || c.conrelid::regclass::text
    from pg_catalog.pg_constraint c where c.conrelid <> 0 and c.contype <> 'n'
) x
order by 1`;

/** What uninstall keeps of ours: the two tables and what belongs to them. */
const KEPT = [
  'constraint avatar_url_at_most_2048_characters on users',
  'constraint full_name_at_most_200_characters on users',
  'constraint user_sync_audit_action_check on user_sync_audit',
  'constraint user_sync_audit_pkey on user_sync_audit',
  'constraint users_id_fkey on users',
  'constraint users_pkey on users',
  'policy users_select_own on users',
  'policy users_update_own_profile on users',
  'relation user_sync_audit r',
  'relation user_sync_audit_id_seq S',
  'relation user_sync_audit_occurred_at i',
  'relation user_sync_audit_pkey i',
  'relation user_sync_audit_user_id i',
  'relation users r',
  'relation users_pkey i',
  'relation users_role i',
  'type user_sync_audit',
  'type user_sync_audit[]',
  'type users',
  'type users[]',
].sort();

interface Database {
  client: DbClient;
  /** Applies the project's migrations not applied yet; throws with the error's message. */
  apply(project: string): Promise<void>;
  asUser<T>(userId: string, fn: (tx: DbClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

async function pgliteDatabase(): Promise<Database> {
  const db = await PGlite.create({ relaxedDurability: true });
  const client: DbClient = {
    query: async (text, params) => (await db.query(text, params)).rows as never,
    exec: async (text) => void (await db.exec(text)),
  };
  return {
    client,
    apply: async (project) =>
      void (await migrate(pgliteExecutor(db), { dir: join(project, 'supabase/migrations') })),
    asUser: (userId, fn) =>
      db.transaction(async (tx) => {
        const pre = preRequest(userClaims(userId));
        await tx.query(pre.sql, pre.params);
        return fn({
          query: async (t, p) => (await tx.query(t, p)).rows as never,
          exec: async (t) => void (await tx.exec(t)),
        });
      }),
    close: () => db.close(),
  };
}

/** A database on the hosted-shaped cluster, migrated by `supabase db push` as `postgres`. */
function hostedDatabase(): Promise<Database> {
  const cluster = runCluster();
  const name = testDatabaseName('_uninstall');
  let created = false;
  let sql: postgres.Sql | undefined;
  const open = () => (sql ??= postgres(cluster.url(name), { max: 2, onnotice: () => {} }));
  return Promise.resolve({
    client: {
      query: (text, params) => postgresClient(open()).query(text, params),
      exec: (text) => postgresClient(open()).exec(text),
    },
    async apply(project) {
      if (!created) {
        created = true;
        await createHostedDatabase(cluster, name, { workdir: project });
      } else {
        await pushMigrations(cluster.url(name, 'postgres'), project);
      }
    },
    asUser: (userId, fn) =>
      open().begin(async (tx) => {
        const pre = preRequest(userClaims(userId));
        await tx.unsafe(pre.sql, pre.params as string[]);
        return fn(postgresClient(tx));
      }) as never,
    async close() {
      await sql?.end({ timeout: 5 });
      if (created) await dropServerDatabase(name);
    },
  });
}

const targets: Array<[string, () => Promise<Database>, boolean]> = [
  ['PGlite', pgliteDatabase, true],
  ['the hosted-shaped cluster, as postgres (server only)', hostedDatabase, SERVER],
];

const catalog = async (db: Database) =>
  (await db.client.query<{ item: string }>(CATALOG_SQL)).map((r) => r.item);

/**
 * The user's migrations, then ours (init), some users, todos and audit rows, then uninstall's
 * migration. Returns the catalog before init and after the uninstall, and the users made.
 */
async function installThenUninstall(db: Database, dropData: boolean) {
  const dir = await makeProject();
  await db.apply(dir);
  const before = await catalog(db);
  await initProject(dir);
  await db.apply(dir);

  // Two users (the trigger writes their rows), the audit trail on and one audited change.
  const alice = await insertAuthUser(db.client, {
    email: 'alice@example.com',
    user_metadata: { full_name: 'Alice' },
  });
  const bob = await insertAuthUser(db.client, { email: 'bob@example.com' });
  await db.client.exec('update user_sync.audit_settings set enabled = true');
  await db.client.query(
    `update auth.users set raw_app_meta_data = raw_app_meta_data || '{"role":"admin"}' where id = $1`,
    [bob.id],
  );
  await db.asUser(
    alice.id,
    (tx) => tx.query(`insert into public.todos (owner, title) values ($1, 'before')`, [alice.id]),
  );
  const rows = await db.client.query<{ id: string; role: string }>(
    'select id, role from public.users order by email',
  );
  expect(rows).toEqual([{ id: alice.id, role: 'client' }, { id: bob.id, role: 'admin' }]);

  const result = await uninstallProject(dir, { dropData });
  expect(result.code, result.text()).toBe(0);
  await db.apply(dir);
  return { dir, before, after: await catalog(db), alice, bob };
}

/** The user's table, policy and function, as a signed-in user uses them. */
async function userObjectsWork(db: Database, userId: string): Promise<void> {
  const other = await insertAuthUser(db.client, { email: 'carol@example.com' });
  await db.asUser(
    other.id,
    (tx) => tx.query(`insert into public.todos (owner, title) values ($1, 'hers')`, [other.id]),
  );
  const seen = await db.asUser(userId, async (tx) => {
    await tx.query(`insert into public.todos (owner, title) values ($1, 'after')`, [userId]);
    const todos = await tx.query<{ title: string }>('select title from public.todos order by id');
    const [open] = await tx.query<{ n: number }>('select public.open_todos($1) as n', [userId]);
    return { todos: todos.map((t) => t.title), open: open!.n };
  });
  // The policy shows only the user's own todos; the function counts them.
  expect(seen).toEqual({ todos: ['before', 'after'], open: 2 });
  // A sign-up after the uninstall: nothing syncs it any more, and nothing fails.
  expect(
    await db.client.query('select 1 from public.users where id = $1', [other.id]).catch(() => []),
  ).toEqual([]);
}

describe.each(targets)('the uninstall migration on %s', (_name, open, enabled) => {
  it.skipIf(!enabled)(
    'leaves only public.users and public.user_sync_audit, with their rows',
    async () => {
      const db = await open();
      try {
        const { before, after, alice, bob } = await installThenUninstall(db, false);
        // Nothing of the user's is gone, and of ours only the two tables remain.
        expect(before.filter((i) => !after.includes(i))).toEqual([]);
        expect(after.filter((i) => !before.includes(i)).sort()).toEqual(KEPT);
        expect(after.join('\n')).not.toMatch(
          /user_sync_api|schema user_sync\b|sync_user|resync_users|hook_/,
        );
        // With their rows, the audit trail's too.
        expect(await db.client.query('select id, email, role from public.users order by email'))
          .toEqual([
            { id: alice.id, email: 'alice@example.com', role: 'client' },
            { id: bob.id, email: 'bob@example.com', role: 'admin' },
          ]);
        const [audit] = await db.client.query<{ n: number }>(
          'select count(*)::int as n from public.user_sync_audit',
        );
        expect(audit!.n).toBeGreaterThan(0);
        // The kept policies read only auth.uid(): nothing of ours.
        const quals = await db.client.query<{ q: string }>(
          `select coalesce(pg_get_expr(polqual, polrelid), '') || coalesce(pg_get_expr(polwithcheck, polrelid), '') as q
           from pg_policy where polrelid = 'public.users'::regclass`,
        );
        for (const { q } of quals) expect(q).not.toMatch(/user_sync/);
        // A user still reads their own row.
        expect(await db.asUser(alice.id, (tx) => tx.query('select email from public.users')))
          .toEqual([{ email: 'alice@example.com' }]);
        await userObjectsWork(db, alice.id);
      } finally {
        await db.close();
      }
    },
  );

  it.skipIf(!enabled)(
    "with --drop-data leaves the database as the user's migrations alone made it",
    async () => {
      const db = await open();
      try {
        const { before, after, alice } = await installThenUninstall(db, true);
        expect(after).toEqual(before);
        await userObjectsWork(db, alice.id);
      } finally {
        await db.close();
      }
    },
  );

  it.skipIf(!enabled)("stops, naming them, when objects of the user's depend on ours", async () => {
    const db = await open();
    try {
      const dir = await makeProject();
      await initProject(dir);
      // Dated ahead of any clock: it must run after ours, which start at the time of init.
      await writeFile(
        join(dir, 'supabase/migrations/29990101000000_theirs_on_ours.sql'),
        `create view public.my_roles as select role from user_sync.roles;
         alter table public.todos add column author_role text references user_sync.roles (role);
         create table public.posts (id int primary key, author uuid references public.users (id));\n`,
      );
      await db.apply(dir);
      const listing = await readdir(join(dir, 'supabase/migrations'));

      expect((await uninstallProject(dir, { dropData: true })).code).toBe(0);
      const error = await db.apply(dir).then(() => '', (e: Error) => e.message);
      expect(error).toContain(
        'supabase-user-sync uninstall: objects of yours depend on what it drops',
      );
      expect(error).toContain('view public.my_roles');
      expect(error).toContain('table constraint todos_author_role_fkey on public.todos');
      expect(error).toContain('table constraint posts_author_fkey on public.posts');
      // Nothing was changed: the migration is one transaction.
      const [left] = await db.client.query<{ n: number }>(
        `select count(*)::int as n from pg_namespace where nspname in ('user_sync', 'user_sync_api')`,
      );
      expect(left!.n).toBe(2);
      expect((await readdir(join(dir, 'supabase/migrations'))).length).toBe(listing.length + 1);
    } finally {
      await db.close();
    }
  });

  // With the data kept, the tables stay: what the user put on them that uses ours must stop the
  // uninstall too, or the cascade would drop it silently (a restrictive policy gone is more
  // access, not less).
  it.skipIf(!enabled)(
    'keeping the data, stops on a policy of theirs on public.users that reads ours',
    async () => {
      const db = await open();
      try {
        const dir = await makeProject();
        await initProject(dir);
        await writeFile(
          join(dir, 'supabase/migrations/29990101000000_restrict_roles.sql'),
          `create policy only_known_roles on public.users as restrictive for select to authenticated
           using (exists (select 1 from user_sync.roles r where r.role = users.role));\n`,
        );
        await db.apply(dir);
        expect((await uninstallProject(dir)).code).toBe(0);
        const error = await db.apply(dir).then(() => '', (e: Error) => e.message);
        expect(error).toContain('objects of yours depend on what it drops');
        expect(error).toContain('policy only_known_roles on public.users');
        const [policy] = await db.client.query<{ n: number }>(
          `select count(*)::int as n from pg_policy where polname = 'only_known_roles'`,
        );
        expect(policy!.n).toBe(1);
      } finally {
        await db.close();
      }
    },
  );
});
