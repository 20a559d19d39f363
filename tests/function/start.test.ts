// `npm start` as a person runs it on a fresh machine: no DATABASE_URL, no secrets; from a copy
// of the repository without tests/ and bench/, which the product must not need.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProductCopy, productCopy } from '../helpers/product-copy.ts';
import { beforeUserCreatedBody, hookRequest } from '../helpers/supabase-auth.ts';

describe('npm start (embedded PGlite, no secrets set)', () => {
  let child: ChildProcess;
  let output = '';
  let base = '';
  let dir = '';
  let copy: ProductCopy;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'user-sync-start-'));
    copy = await productCopy();
    const env: Record<string, string | undefined> = { ...process.env, PORT: '0' };
    for (
      const name of [
        'DATABASE_URL',
        'AUTH_HOOK_SECRET',
        'USER_SYNC_ADMIN_TOKEN',
        'USER_SYNC_WEBHOOK_SECRET',
      ]
    ) {
      delete env[name];
    }
    env.USER_SYNC_PGLITE_DIR = join(dir, 'pglite');
    child = spawn('npm', ['start', '--silent'], {
      cwd: copy.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start:\n${output}`)), 90_000);
      const check = () => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/functions\/v1\/user-sync)/.exec(output);
        if (m && output.includes('webhook-signature')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
    });
  }, 120_000);

  afterAll(async () => {
    if (child?.pid && child.exitCode === null) process.kill(-child.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await rm(dir, { recursive: true, force: true });
    await copy?.remove();
  });

  it('generates a random hook secret, prints it, and accepts requests signed with it', async () => {
    const secret = /AUTH_HOOK_SECRET=(v1,whsec_[A-Za-z0-9+/=]+)/.exec(output)?.[1];
    expect(secret).toBeDefined();
    const req = await hookRequest(
      `${base}/hooks/before-user-created`,
      beforeUserCreatedBody({ raw_user_meta_data: { role: 'admin' } }),
      { secrets: secret! },
    );
    const res = await fetch(req);
    expect(res.status).toBe(200);
    expect((await res.json()).error.http_code).toBe(400);
  });

  it('serves under /functions/v1 on the migrated embedded database', async () => {
    const health = await fetch(`${base}/health`);
    expect(await health.json()).toMatchObject({ status: 'ok', database: 'ok' });
    const token = /USER_SYNC_ADMIN_TOKEN=(\S+)/.exec(output)![1];
    const res = await fetch(`${base}/resync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: '{"dry_run":true}',
    });
    expect(await res.json()).toMatchObject({ dry_run: true, auth_users: 0, done: true });
    const outside = await fetch(base.replace('/functions/v1', ''));
    expect(outside.status).toBe(404);
  });

  it('prints the next commands: the resync CLI against this server, and the demo', () => {
    expect(output).toContain(
      `USER_SYNC_ADMIN_TOKEN=<the token above> npm run resync -- --url ${base} --dry-run`,
    );
    expect(output).toContain('npm run demo');
  });
});
