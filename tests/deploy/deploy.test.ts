// Deploying as a user does: the real Supabase CLI reads supabase/config.toml on a fresh clone
// (nothing exported), uploads the function to a Management API stand-in, and what it uploaded
// boots under Deno the way the edge runtime runs it: in an empty directory, with no
// node_modules, an empty module cache and the uploaded import map. npm packages come from the
// machine's npm registry. Then signed hooks go to the booted upload.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type ServerTestDb } from '../helpers/db.ts';
import {
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  hookRequest,
  newHookSecret,
} from '../helpers/supabase-auth.ts';
import {
  type BootedUpload,
  bootUpload,
  copyProject,
  deployFunction,
  type ManagementApi,
  PROJECT_REF,
  startManagementApi,
  supabase,
  type Upload,
} from '../../dev/supabase-cli.ts';

const deploy = ['functions', 'deploy', 'user-sync', '--use-api', '--project-ref', PROJECT_REF];

let api: ManagementApi;
const scratch: string[] = [];

beforeAll(async () => {
  api = await startManagementApi();
});

afterAll(async () => {
  await api?.close();
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

describe('supabase/config.toml on a fresh clone', () => {
  it('lets `functions deploy` upload with nothing exported and no .env', async () => {
    const project = await copyProject();
    scratch.push(project);
    const result = await supabase(deploy, { cwd: project, api });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout + result.stderr).toContain('Deployed Functions');
  });

  it('lets `secrets set --env-file` send the names .env.example lists', async () => {
    const project = await copyProject();
    scratch.push(project);
    const example = await readFile('supabase/.env.example', 'utf8');
    const names = [...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!);
    expect(names).toEqual([
      'AUTH_HOOK_SECRET',
      'USER_SYNC_WEBHOOK_SECRET',
      'USER_SYNC_ADMIN_TOKEN',
    ]);
    // What the guide has the user write from the example: every value filled in.
    const filled = names.map((n) =>
      `${n}=${n === 'AUTH_HOOK_SECRET' ? newHookSecret() : crypto.randomUUID()}`
    );
    await writeFile(join(project, 'supabase/.env'), filled.join('\n') + '\n');
    const before = api.secretNames.length;
    const result = await supabase(
      ['secrets', 'set', '--env-file', 'supabase/.env', '--project-ref', PROJECT_REF],
      { cwd: project, api },
    );
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(api.secretNames.slice(before).sort()).toEqual([...names].sort());
  });

  it('refuses an enabled HTTP hook until AUTH_HOOK_SECRET is set, then accepts it', async () => {
    const project = await copyProject();
    scratch.push(project);
    const file = join(project, 'supabase/config.toml');
    const toml = await readFile(file, 'utf8');
    const enabled = toml.replace(
      /(\[auth\.hook\.custom_access_token\]\n)enabled = false/,
      '$1enabled = true',
    );
    expect(enabled).not.toBe(toml);
    await writeFile(file, enabled);

    const without = await supabase(deploy, { cwd: project, api });
    expect(without.code).not.toBe(0);
    expect(without.stderr + without.stdout).toContain(
      'auth.hook.custom_access_token.secrets must be formatted as "v1,whsec_',
    );

    const withSecret = await supabase(deploy, {
      cwd: project,
      api,
      env: { AUTH_HOOK_SECRET: newHookSecret() },
    });
    expect(withSecret.code, withSecret.stderr + withSecret.stdout).toBe(0);
  });
});

describe('what `supabase functions deploy user-sync` uploads', () => {
  let upload: Upload;

  beforeAll(async () => {
    upload = await deployFunction(api, resolve('.'));
  }, 120_000);

  it('is the entry, its import map and shared/, with verify_jwt off', () => {
    expect(upload.slug).toBe('user-sync');
    expect(upload.metadata).toMatchObject({
      entrypoint_path: 'supabase/functions/user-sync/index.ts',
      import_map_path: 'supabase/functions/user-sync/deno.json',
      verify_jwt: false,
    });
    const paths = [...upload.files.keys()];
    expect(paths).toContain('supabase/functions/user-sync/index.ts');
    expect(paths).toContain('supabase/functions/user-sync/deno.json');
    expect(paths).toContain('shared/gateways/direct.ts');
    for (const path of paths) {
      expect(path).toMatch(/^(shared\/|supabase\/functions\/user-sync\/)[\w/.-]+\.(ts|json)$/);
    }
  });

  it('carries an import map the edge runtime can resolve without node_modules', () => {
    const map = JSON.parse(upload.files.get('supabase/functions/user-sync/deno.json')!);
    // "manual" makes the runtime look for a node_modules folder the CLI never uploads.
    expect(map).not.toHaveProperty('nodeModulesDir');
    for (const [name, target] of Object.entries(map.imports as Record<string, string>)) {
      if (name.endsWith('/')) expect(target).toMatch(/^npm:\/.+@[^/]+\/$/);
    }
  });

  // Booting needs a database for the custom-access-token answer; PGlite is in-process.
  describe.skipIf(!process.env.DATABASE_URL)('booted as the edge runtime boots it', () => {
    let db: ServerTestDb;
    let booted: BootedUpload;
    let base: string;
    let output = '';
    const secret = newHookSecret();

    beforeAll(async () => {
      db = (await createTestDb()) as ServerTestDb;
      booted = await bootUpload(upload, {
        // As hosted injects it: the non-superuser `postgres`.
        SUPABASE_DB_URL: db.urlAs('postgres'),
        AUTH_HOOK_SECRET: secret,
      }, (line) => (output += `${line}\n`));
      base = `http://127.0.0.1:${booted.fn.port}/user-sync`;
    }, 180_000);

    afterAll(async () => {
      await booted?.remove();
      await db?.close();
    });

    it('fetched its npm packages itself and never looked for node_modules', async () => {
      // An empty DENO_DIR: every package the import map names was downloaded at boot.
      for (const pkg of ['hono', 'zod', 'postgres']) {
        expect(output).toMatch(new RegExp(`Download \\S+/${pkg}/-/${pkg}-[\\d.]+\\.tgz`));
      }
      expect(output).not.toMatch(/node_modules/);
      expect(await readdir(booted.root)).toEqual(['shared', 'supabase']);
    });

    it('answers health with a reachable database', async () => {
      const res = await fetch(`${base}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok' });
    });

    it('refuses an admin sign-up in a signed before-user-created hook', async () => {
      const res = await fetch(
        await hookRequest(
          `${base}/hooks/before-user-created`,
          beforeUserCreatedBody({ email: 'x@example.com', raw_user_meta_data: { role: 'admin' } }),
          { secrets: secret },
        ),
      );
      expect(res.status).toBe(200);
      expect((await res.json()).error).toMatchObject({ http_code: 400 });
    });

    it('adds user_role to a signed custom-access-token hook (hono/ subpaths resolve)', async () => {
      const id = crypto.randomUUID();
      await db.asAuthAdmin((tx) =>
        tx.query(
          `insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
             raw_user_meta_data, created_at, updated_at)
           values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated',
             $2, '{"provider":"email","providers":["email"]}', '{}', now(), now())`,
          [id, `${id.slice(0, 8)}@example.com`],
        )
      );
      const body = customAccessTokenBody(id, defaultClaims(id));
      const res = await fetch(
        await hookRequest(`${base}/hooks/custom-access-token`, body, { secrets: secret }),
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBeTruthy();
      expect((await res.json()).claims).toEqual({
        ...JSON.parse(body).claims,
        user_role: 'client',
      });
    });

    it('refuses a hook signed with another secret with 401', async () => {
      const res = await fetch(
        await hookRequest(`${base}/hooks/custom-access-token`, '{}', { secrets: newHookSecret() }),
      );
      expect(res.status).toBe(401);
    });
  });
});
