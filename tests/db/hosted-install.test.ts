// A fresh install as hosted Supabase runs it (issue 12, finding 1): on the run's private cluster,
// shaped like hosted, the real Supabase CLI applies the migrations logging in as `postgres`,
// which is no superuser and owns nothing in `auth`. The first edition failed here with "must be
// owner of relation users" (it dropped triggers on auth.users). Server only.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS_DIR, splitStatements } from '../../dev/migrations.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { createHostedDatabase, pushMigrations } from '../helpers/cluster.ts';
import {
  dropServerDatabase,
  migrationFiles,
  runCluster,
  SERVER,
  serverUrl,
  testDatabaseName,
  withDatabase,
} from '../helpers/db.ts';

describe.skipIf(!SERVER)('a fresh install as hosted postgres (server only)', () => {
  const name = SERVER ? testDatabaseName('_install') : '';
  const admin = () => postgres(withDatabase(serverUrl(), name), { max: 1, onnotice: () => {} });

  afterAll(async () => {
    if (SERVER) await dropServerDatabase(name);
  });

  it('supabase db push as postgres installs every migration', async () => {
    await createHostedDatabase(runCluster(), name);
    const sql = admin();
    try {
      const [role] = await sql<{ super: boolean; bypass: boolean }[]>`
        select rolsuper as super, rolbypassrls as bypass from pg_roles where rolname = 'postgres'`;
      // What makes this test mean anything: the installer is not a superuser.
      expect(role).toEqual({ super: false, bypass: true });
      const applied = await sql<{ version: string }[]>`
        select version from supabase_migrations.schema_migrations order by version`;
      const onDisk = (await migrationFiles()).map((m) => m.version);
      expect(onDisk.length).toBeGreaterThan(0);
      expect(applied.map((r) => r.version)).toEqual(onDisk);
      const triggers = await sql<{ name: string }[]>`
        select tgname as name from pg_trigger
         where tgrelid = 'auth.users'::regclass and not tgisinternal order by 1`;
      expect(triggers.map((t) => t.name)).toEqual([
        'user_sync_after_insert',
        'user_sync_after_update',
      ]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  // `npm run db:migrate` and PGlite record what the CLI records: dev/migrations.ts splits each
  // file into the same statements (a statement it cut wrongly would apply differently there).
  it('splits every migration into the statements the real CLI recorded', async () => {
    const sql = admin();
    try {
      const recorded = await sql<{ file: string; statements: string[] }[]>`
        select version || '_' || name || '.sql' as file, statements
          from supabase_migrations.schema_migrations order by version`;
      const ours = await Promise.all((await migrationFiles()).map(async (m) => ({
        file: m.file,
        statements: splitStatements(await readFile(join(MIGRATIONS_DIR, m.file), 'utf8')),
      })));
      expect(recorded.map((r) => ({ ...r }))).toEqual(ours);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('owns what it created and nothing of auth', async () => {
    const sql = admin();
    try {
      const owners = await sql<{ owner: string }[]>`
        select distinct pg_get_userbyid(c.relowner) as owner from pg_class c
         where c.relnamespace in ('public'::regnamespace, 'user_sync'::regnamespace)
        union
        select distinct pg_get_userbyid(p.proowner) from pg_proc p
         where p.pronamespace in ('public'::regnamespace, 'user_sync'::regnamespace,
           'user_sync_api'::regnamespace)
        union
        select pg_get_userbyid(n.nspowner) from pg_namespace n
         where n.nspname in ('user_sync', 'user_sync_api')`;
      expect(owners.map((o) => o.owner)).toEqual(['postgres']);
      const [inAuth] = await sql<{ n: number }[]>`
        select (select count(*) from pg_class where relnamespace = 'auth'::regnamespace
                  and relowner = 'postgres'::regrole)
             + (select count(*) from pg_proc where pronamespace = 'auth'::regnamespace
                  and proowner = 'postgres'::regrole) as n`;
      expect(Number(inAuth!.n)).toBe(0);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('a second push applies nothing', async () => {
    const out = await pushMigrations(runCluster().url(name, 'postgres'));
    expect(out).toMatch(/up to date/i);
  });
});
