// `npm run demo`: the story it tells must be true. Run in-process (the exported runDemo) on
// this file's test database (PGlite, or the server's clone when DATABASE_URL is set) and
// asserted on the data it returns; and once as a newcomer runs it (a child process, nothing
// configured, so it builds its own embedded database).
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { demoDbOnPglite, demoDbOnServer } from '../../dev/demo/db.ts';
import { type DemoResult, runDemo } from '../../dev/demo/run.ts';
import { createTestDb } from '../helpers/db.ts';

const PATHS = [
  'email, confirmation on',
  'email, confirmation off',
  'email, asks for admin',
  'Google OAuth',
  'GitHub OAuth',
  'phone (SMS)',
  'anonymous',
  'invite',
  'admin createUser, role admin',
  'Dashboard / SQL insert',
];

describe('npm run demo (in-process)', () => {
  let result: DemoResult;
  const lines: string[] = [];

  beforeAll(async () => {
    const test = await createTestDb();
    const db = test.kind === 'pglite'
      ? demoDbOnPglite(test.pglite, 'the test database (PGlite)', true)
      : demoDbOnServer(test.url, 'the test database (server)', () => test.close());
    result = await runDemo({ db, out: (t) => lines.push(t) });
  }, 120_000);

  const byPath = (snapshot: DemoResult['before'], path: string) =>
    snapshot.users.find((u) => u.path === path);

  it('plays every sign-up path, with the hooks Supabase Auth sends on each', () => {
    expect(result.steps.map((s) => s.path)).toEqual(PATHS);
    const hooks = Object.fromEntries(
      result.steps.map((s) => [s.path, s.calls.map((c) => c.hook)]),
    );
    expect(hooks).toEqual({
      'email, confirmation on': ['before-user-created', 'after-user-created'],
      'email, confirmation off': ['before-user-created', 'custom-access-token'],
      'email, asks for admin': ['before-user-created'],
      'Google OAuth': ['before-user-created', 'custom-access-token', 'after-user-created'],
      'GitHub OAuth': ['before-user-created', 'custom-access-token', 'after-user-created'],
      'phone (SMS)': ['before-user-created', 'after-user-created'],
      'anonymous': ['before-user-created', 'custom-access-token', 'after-user-created'],
      'invite': ['before-user-created', 'after-user-created'],
      'admin createUser, role admin': ['custom-access-token'],
      'Dashboard / SQL insert': ['database webhook'],
    });
    for (const call of result.steps.flatMap((s) => s.calls)) expect(call.status).toBe(200);
  });

  it('refuses a self-chosen admin role before the user exists', () => {
    const step = result.steps.find((s) => s.path === 'email, asks for admin')!;
    expect(step.userId).toBeNull();
    expect(step.calls[0]!.result).toMatch(/^rejected \(400\): The role "admin" cannot be chosen/);
    expect(result.before.users.some((u) => u.who === 'mallory@example.com')).toBe(false);
  });

  it('puts roles in the tokens: admin from app_metadata, never from user_metadata', () => {
    const roleOf = (path: string) =>
      result.steps.find((s) => s.path === path)!.calls.find((c) => c.hook === 'custom-access-token')
        ?.result;
    expect(roleOf('admin createUser, role admin')).toBe('user_role=admin');
    expect(roleOf('email, confirmation off')).toBe('user_role=producer');
    expect(roleOf('anonymous')).toBe('user_role=client');
    // ada asked for admin through updateUser({data}) after signing up as an artist.
    expect(byPath(result.after, 'email, confirmation on')!.app!.role).toBe('artist');
    expect(byPath(result.after, 'admin createUser, role admin')!.app!.role).toBe('admin');
  });

  it('before the resync: the failed write is missing with its failure, the lost event is stale', () => {
    const { before } = result;
    expect(before.authUsers).toBe(9);
    expect(before.appUsers).toBe(8);
    expect(before.failuresPending).toBe(1);
    const phone = byPath(before, 'phone (SMS)')!;
    expect(phone.status).toBe('MISSING');
    expect(phone.app).toBeNull();
    expect(phone.failure).toMatch(/SQLSTATE 23514.*users_email_required/);
    const github = byPath(before, 'GitHub OAuth')!;
    expect(github.status).toBe('STALE');
    expect(github.differs).toEqual(['email: octo@example.com → octocat@example.org']);
    expect(
      before.users.filter((u) => u.status === 'in sync').map((u) => u.path).sort(),
    ).toEqual(
      PATHS.filter((p) =>
        !['email, asks for admin', 'phone (SMS)', 'GitHub OAuth']
          .includes(p)
      ).sort(),
    );
    // The function answered the phone user's after-user-created with 200 {} (fail open).
    const after = result.steps.find((s) => s.path === 'phone (SMS)')!.calls[1]!;
    expect(after.result).toMatch(/^answered \{\} \[function: deferred/);
  });

  it('the dry run reports exactly that drift; the resync repairs it; a second check finds nothing', () => {
    expect(result.drift).toMatchObject({
      dry_run: true,
      auth_users: 9,
      missing: 1,
      stale: 1,
      orphaned: 0,
      inserted: 0,
      updated: 0,
      failures_pending: 1,
      done: true,
    });
    expect(result.repair).toMatchObject({
      dry_run: false,
      auth_users: 9,
      inserted: 1,
      updated: 1,
      deleted: 0,
      unchanged: 7,
      failed: 0,
      failures_pending: 0,
      done: true,
    });
    expect(result.verify).toMatchObject({ missing: 0, stale: 0, orphaned: 0, failures_pending: 0 });
  });

  it('after the resync every auth user has its correct row', () => {
    const { after } = result;
    expect(after).toMatchObject({ authUsers: 9, appUsers: 9, failuresPending: 0 });
    expect(after.users.every((u) => u.status === 'in sync')).toBe(true);
    expect(byPath(after, 'GitHub OAuth')!.app).toMatchObject({
      email: 'octocat@example.org',
      full_name: 'octocat',
      role: 'client',
    });
    expect(byPath(after, 'phone (SMS)')!.app).toMatchObject({ phone: '15550100', role: 'client' });
    expect(byPath(after, 'Google OAuth')!.app!.full_name).toBe('Katherine Johnson');
    expect(result.inSync).toBe(true);
  });

  it('prints both tables, and the function logged no secret or token', () => {
    const text = lines.join('\n');
    expect(text).toContain('3. Before the resync');
    expect(text).toMatch(/\| GitHub OAuth .*\| STALE \[1\]/);
    expect(text).toMatch(/\| phone \(SMS\) .*\| MISSING \[2\]/);
    expect(text).toContain('9 auth.users, 9 public.users, 0 missing, 0 stale');
    expect(text).toContain('All synced.');
    const logs = JSON.stringify(result.logs);
    expect(logs).not.toMatch(/whsec_|Bearer|encrypted_password|\$2a\$/);
  });
});

// The newcomer's command, once: nothing configured, the embedded database. (With DATABASE_URL
// the in-process run above already covers the server.)
describe.skipIf(process.env.DATABASE_URL)(
  'npm run demo (child process, nothing configured)',
  () => {
    it('prints the story and exits 0', async () => {
      const env: Record<string, string | undefined> = { ...process.env };
      for (const name of ['DATABASE_URL', 'AUTH_HOOK_SECRET', 'USER_SYNC_ADMIN_TOKEN']) {
        delete env[name];
      }
      const child = spawn('node_modules/.bin/tsx', ['dev/demo.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(stdout).toContain('embedded PGlite');
      expect(stdout).toMatch(/MISSING \[\d\]/);
      expect(stdout).toMatch(/STALE \[\d\]/);
      expect(stdout).toContain('All synced.');
    }, 120_000);
  },
);
