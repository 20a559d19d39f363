// The deployed entry, supabase/functions/user-sync/index.ts, run by a real Deno with the
// function's own deno.json (the import map the platform uses), resolving npm: specifiers from
// node_modules. Requests are signed and shaped byte for byte as Supabase Auth sends them.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import * as auth from '../helpers/supabase-auth.ts';
import { ADMIN_TOKEN, HOOK_SECRET, OLD_HOOK_SECRET, WEBHOOK_SECRET } from './fakes.ts';
import { CONFIG, DENO, type DenoProcess, ENTRY, startEntry } from '../../dev/deno.ts';

describe('the deployed import graph', () => {
  it('holds shared/ and the pinned packages, never PGlite, dev, tests, cli or bench', async () => {
    const { stdout } = await promisify(execFile)(DENO, [
      'info',
      '--json',
      '--node-modules-dir=manual',
      '--config',
      CONFIG,
      ENTRY,
    ], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const modules: string[] = JSON.parse(stdout).modules.map((m: { specifier: string }) =>
      m.specifier
    );
    const local = modules.filter((m) => !m.includes('/node_modules/'));
    expect(local.every((m) => /\/(shared|supabase\/functions\/user-sync)\//.test(m))).toBe(true);
    expect(local.some((m) => m.endsWith('/shared/gateways/direct.ts'))).toBe(true);
    expect(local.some((m) => m.endsWith('/shared/gateways/supabase-js.ts'))).toBe(true);
    expect(modules.filter((m) => /pglite|\/(tests|dev|cli|bench)\//.test(m))).toEqual([]);
  });

  it('maps npm: specifiers at exactly the versions in package.json', () => {
    // The function's packages are development dependencies here (the published package is the
    // installer, which never runs them): the deployed function fetches them itself.
    const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
    const pkg = { ...manifest.dependencies, ...manifest.devDependencies } as Record<string, string>;
    const imports = JSON.parse(readFileSync(CONFIG, 'utf8')).imports as Record<string, string>;
    for (const [name, target] of Object.entries(imports)) {
      // A prefix entry ("hono/") must target "npm:/pkg@version/": Deno cannot resolve
      // "hono/request-id" against "npm:hono@version/", which is not a URL it can join to.
      const match = name.endsWith('/')
        ? /^npm:\/(@?[^@]+)@([^/]+)\/$/.exec(target)
        : /^npm:(@?[^@/]+(?:\/[^@]+)?)@([^/]+)$/.exec(target);
      expect(match, target).not.toBeNull();
      expect(pkg[match![1]!], name).toBe(match![2]);
    }
  });
});

const serverDb = !!process.env.DATABASE_URL;

// PGlite lives inside the test process, so a separate Deno process cannot reach it.
describe.skipIf(!serverDb)(
  'end to end under Deno (needs DATABASE_URL: PGlite is in-process)',
  () => {
    let db: TestDb & { kind: 'server' };
    let fn: DenoProcess;
    let base: string;
    let coldStartMs = 0;

    beforeAll(async () => {
      db = await createTestDb() as TestDb & { kind: 'server' };
      fn = await startEntry({
        // The role behind SUPABASE_DB_URL on hosted: the non-superuser `postgres`.
        DATABASE_URL: db.urlAs('postgres'),
        AUTH_HOOK_SECRET: `${OLD_HOOK_SECRET}|${HOOK_SECRET}`,
        USER_SYNC_WEBHOOK_SECRET: WEBHOOK_SECRET,
        USER_SYNC_ADMIN_TOKEN: ADMIN_TOKEN,
      });
      base = `http://127.0.0.1:${fn.port}/user-sync`;
      coldStartMs = fn.listenMs;
    }, 120_000);

    afterAll(async () => {
      await fn?.stop();
      await db?.close();
    });

    async function signUp(meta: Record<string, unknown> = {}) {
      const id = crypto.randomUUID();
      await db.asAuthAdmin(async (tx) => {
        await tx.query(
          `insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
           raw_user_meta_data, created_at, updated_at)
         values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', '', $2,
           $3::jsonb, $4::jsonb, now(), now())`,
          [id, `${id.slice(0, 8)}@example.com`, { provider: 'email', providers: ['email'] }, meta],
        );
        await tx.query(`update auth.users set role = 'authenticated' where id = $1`, [id]);
      });
      return id;
    }

    const role = async (id: string) =>
      (await db.query<{ role: string }>('select role from public.users where id = $1', [id]))[0]
        ?.role ??
        null;

    it("starts cold within Supabase Auth's 5 s hook budget and reports a reachable database", async () => {
      console.info(`deno cold start to listening: ${coldStartMs.toFixed(0)} ms`);
      expect(coldStartMs).toBeLessThan(5000);
      const first = performance.now();
      const res = await fetch(`${base}/health`);
      console.info(`first request (opens the pool): ${(performance.now() - first).toFixed(0)} ms`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok' });
    });

    it('before-user-created refuses admin with 200 and an error object, signed with both secrets', async () => {
      const req = await auth.hookRequest(
        `${base}/hooks/before-user-created`,
        auth.beforeUserCreatedBody({
          email: 'x@example.com',
          raw_user_meta_data: { role: 'admin' },
        }),
        { secrets: `${OLD_HOOK_SECRET}|${HOOK_SECRET}` },
      );
      const res = await fetch(req);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await res.json()).error).toMatchObject({ http_code: 400 });
    });

    it('after-user-created syncs a user whose row is missing', async () => {
      const id = await signUp({ role: 'artist' });
      await db.exec(`delete from public.users where id = '${id}'`);
      const row = (await db.query('select * from auth.users where id = $1', [id]))[0]!;
      const started = performance.now();
      const res = await fetch(
        await auth.hookRequest(
          `${base}/hooks/after-user-created`,
          auth.afterUserCreatedBody(row as never),
          {
            secrets: HOOK_SECRET,
          },
        ),
      );
      console.info(
        `after-user-created (warm, one sync): ${(performance.now() - started).toFixed(0)} ms`,
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
      expect(await role(id)).toBe('artist');
    });

    it('custom-access-token returns the claims plus user_role', async () => {
      const id = await signUp();
      const body = auth.customAccessTokenBody(id, auth.defaultClaims(id));
      const times: number[] = [];
      let out: { claims: Record<string, unknown> } | null = null;
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        const res = await fetch(
          await auth.hookRequest(`${base}/hooks/custom-access-token`, body, {
            secrets: OLD_HOOK_SECRET,
          }),
        );
        times.push(performance.now() - started);
        expect(res.status).toBe(200);
        out = await res.json();
      }
      times.sort((a, b) => a - b);
      console.info(
        `custom-access-token x20: median ${times[10]!.toFixed(1)} ms, max ${
          times[19]!.toFixed(1)
        } ms`,
      );
      expect(out!.claims).toEqual({ ...JSON.parse(body).claims, user_role: 'client' });
    });

    it('refuses a wrong signature with 401', async () => {
      const other = 'v1,whsec_' + btoa('z'.repeat(32));
      const res = await fetch(
        await auth.hookRequest(`${base}/hooks/after-user-created`, '{}', { secrets: other }),
      );
      expect(res.status).toBe(401);
    });

    it('the database webhook and resync work against the same database', async () => {
      const id = await signUp();
      await db.exec(`delete from public.users where id = '${id}'`);
      const hook = await fetch(`${base}/webhooks/auth-users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'INSERT',
          table: 'users',
          record: { id },
          schema: 'auth',
          old_record: null,
        }),
      });
      expect(await hook.json()).toMatchObject({ user_id: id, action: 'inserted' });

      await db.exec(`delete from public.users where id = '${id}'`);
      const dry = await fetch(`${base}/resync`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ dry_run: true }),
      });
      expect(await dry.json()).toMatchObject({
        dry_run: true,
        missing: 1,
        inserted: 0,
        done: true,
      });
      expect(await role(id)).toBeNull();
      const real = await fetch(`${base}/resync`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        body: '{}',
      });
      expect(await real.json()).toMatchObject({ dry_run: false, inserted: 1, done: true });
      expect(await role(id)).toBe('client');
    });
  },
);
