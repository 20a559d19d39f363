// `npm run resync` against a running function (the app on an ephemeral port over this file's
// test database), as an operator runs it: a child process, token from the environment or
// --token. The function's time budget is 1 ms, so every request does one batch and the CLI
// must follow the cursor over several requests.
import { spawn } from 'node:child_process';
import { freePort } from '../../dev/ports.ts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../shared/app.ts';
import { systemClock } from '../../shared/clock.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDirectGateway, postgresExecutor } from '../../shared/gateways/direct.ts';
import type { Gateway } from '../../shared/gateway.ts';
import { memoryLogger } from '../../dev/memory-logger.ts';
import { pgliteGateway, serve, type Serving } from '../../dev/server.ts';
import { EXIT, main } from '../../cli/resync.ts';
import { insertAuthUsersSql, useTestDb } from '../helpers/db.ts';

const TOKEN = 'cli-test-admin-token-5f0c2a9e71d4';
const USERS = 10;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function resync(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('USER_SYNC_ADMIN_TOKEN' in env)) delete childEnv.USER_SYNC_ADMIN_TOKEN;
  const child = spawn('node_modules/.bin/tsx', ['cli/resync.ts', ...args], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The number in the table row `label` of column `col` (0: first numbers column). */
function cell(stdout: string, label: string, col = 0): number {
  const row = stdout.split('\n').find((l) => l.startsWith(`| ${label} `));
  if (!row) throw new Error(`no row ${label} in:\n${stdout}`);
  return Number(row.split('|').slice(2, -1)[col]!.trim());
}

describe('npm run resync against a running function', () => {
  const db = useTestDb();
  let gateway: Gateway;
  let serving: Serving;
  let url: string;
  const appRows = async () =>
    Number((await db.query<{ n: number }>('select count(*)::int as n from public.users'))[0]!.n);

  beforeAll(async () => {
    gateway = db.kind === 'pglite'
      ? { ...pgliteGateway(db.pglite), close: () => Promise.resolve() }
      : createDirectGateway(postgresExecutor(db.urlAs('postgres')));
    const config = parseConfig({ USER_SYNC_ADMIN_TOKEN: TOKEN, USER_SYNC_RESYNC_BUDGET_MS: '1' });
    const app = createApp({ config, gateway, clock: systemClock, logger: memoryLogger() });
    serving = await serve(app, 0);
    url = serving.base;
    // Users created the plain SQL way: the trigger gives each its row.
    await db.exec(insertAuthUsersSql(USERS, { emailPrefix: 'user' }));
    // Drift as it happens: three rows lost, two edited behind the sync's back.
    await db.exec(`
      delete from public.users where email in ('user1@example.com', 'user2@example.com', 'user3@example.com');
      update public.users set email = 'old-' || email where email in ('user4@example.com', 'user5@example.com');`);
  }, 120_000);

  afterAll(async () => {
    await serving?.close();
    await gateway?.close?.();
  });

  it('--dry-run reports the drift, writes nothing, and exits 1', async () => {
    const run = await resync(['--url', url, '--dry-run', '--batch-size', '3'], {
      USER_SYNC_ADMIN_TOKEN: TOKEN,
    });
    expect(run.code).toBe(1);
    expect(cell(run.stdout, 'auth users')).toBe(USERS);
    expect(cell(run.stdout, 'missing (no app row)')).toBe(3);
    expect(cell(run.stdout, 'stale (app row differs)')).toBe(2);
    expect(cell(run.stdout, 'inserted')).toBe(0);
    expect(run.stdout).toContain('Drift found (nothing was written');
    expect(run.stderr).toMatch(/checking +10 users \| 4 requests \| 5 out of step/);
    expect(await appRows()).toBe(USERS - 3);
  });

  it('repairs in batches with a progress bar, checks again, and exits 0', async () => {
    const run = await resync(['--url', url, '--batch-size', '4'], {
      USER_SYNC_ADMIN_TOKEN: TOKEN,
    });
    expect(run.stderr).toMatch(
      /repairing \[[█░]+\] 100% \| 10\/10 users \| 3 requests \| 5 written, 0 failed/,
    );
    expect(run.stderr).toMatch(/verifying/);
    expect(run.code).toBe(0);
    // Columns: found, repaired, after.
    expect(cell(run.stdout, 'missing (no app row)', 0)).toBe(3);
    expect(cell(run.stdout, 'inserted', 1)).toBe(3);
    expect(cell(run.stdout, 'updated', 1)).toBe(2);
    expect(cell(run.stdout, 'unchanged', 1)).toBe(USERS - 5);
    expect(cell(run.stdout, 'missing (no app row)', 2)).toBe(0);
    expect(cell(run.stdout, 'stale (app row differs)', 2)).toBe(0);
    expect(run.stdout).toContain(`In sync now: ${USERS} auth users, ${USERS} app users.`);
    expect(await appRows()).toBe(USERS);
    expect(run.stdout + run.stderr).not.toContain(TOKEN);
  });

  it('with nothing to do: one check, exit 0; --json for scripts', async () => {
    const run = await resync(['--url', `${url}/`, '--json', '--token', TOKEN]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.in_sync).toBe(true);
    expect(report.found).toMatchObject({ auth_users: USERS, missing: 0, stale: 0, dry_run: true });
    expect(report.repaired).toBeUndefined();
  });

  it('exits 1 when a row still cannot be written, and says where the failure is', async () => {
    await db.exec(`
      alter table public.users add constraint cli_test_block check (email <> 'user6@example.com') not valid;
      delete from public.users where email = 'user6@example.com';`);
    try {
      const run = await resync(['--url', url], { USER_SYNC_ADMIN_TOKEN: TOKEN });
      expect(run.code).toBe(1);
      expect(cell(run.stdout, 'failed', 1)).toBe(1);
      expect(cell(run.stdout, 'failures pending', 2)).toBe(1);
      expect(run.stdout).toContain('Still out of step after the repair:');
      expect(run.stdout).toContain('user_sync.sync_failures');
    } finally {
      await db.exec('alter table public.users drop constraint cli_test_block');
    }
    const again = await resync(['--url', url], { USER_SYNC_ADMIN_TOKEN: TOKEN });
    expect(again.code).toBe(0);
  });

  it('a wrong token (3), an unreachable URL (4), a wrong path (4): clear messages', async () => {
    const wrong = 'not-the-admin-token-0123456789';
    const port = await freePort(); // nothing listens on it
    const [wrongToken, unreachable, wrongPath] = await Promise.all([
      resync(['--url', url, '--token', wrong]),
      resync(['--url', `http://127.0.0.1:${port}/functions/v1/user-sync`], {
        USER_SYNC_ADMIN_TOKEN: TOKEN,
      }),
      resync(['--url', url.replace('user-sync', 'user-synk')], { USER_SYNC_ADMIN_TOKEN: TOKEN }),
    ]);
    expect(wrongToken.code).toBe(3);
    expect(wrongToken.stderr).toContain('The function refused the token (HTTP 401)');
    expect(wrongToken.stdout).toBe('');
    expect(wrongToken.stdout + wrongToken.stderr).not.toContain(wrong);

    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain(
      `Cannot reach http://127.0.0.1:${port}/functions/v1/user-sync/resync: connection refused`,
    );

    expect(wrongPath.code).toBe(4);
    expect(wrongPath.stderr).toContain('(HTTP 404)');
  });

  it('bad usage exits 2 before any request (in-process)', async () => {
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a) =>
      void errors.push(a.join(' '))
    );
    try {
      expect(await main(['--url', url], {})).toBe(EXIT.usage);
      expect(await main(['--url', url, '--batch-size', '0'], { USER_SYNC_ADMIN_TOKEN: TOKEN }))
        .toBe(EXIT.usage);
      expect(await main(['--url', 'ftp://example.com'], { USER_SYNC_ADMIN_TOKEN: TOKEN }))
        .toBe(EXIT.usage);
      expect(await main(['--nope'], {})).toBe(EXIT.usage);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join('\n')).toContain('No token: set USER_SYNC_ADMIN_TOKEN or pass --token.');
    expect(errors.join('\n')).toContain('--batch-size must be a whole number from 1 to 50000.');
    expect(errors.join('\n')).toContain('The URL must start with http:// or https://.');
    expect(errors.join('\n')).toContain("Unknown option '--nope'");
  });
});
