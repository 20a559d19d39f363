// Everything the app logs (shared/logger.ts, as jsonLogger would print it) and everything that
// reaches the console while it serves, captured over requests that carry every secret, token,
// signature and password hash there is, on success and on error paths (bad auth, bad bodies,
// an unreachable database). None of those strings may appear.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDirectGateway, postgresExecutor } from '../../shared/gateways/direct.ts';
import type { Gateway } from '../../shared/gateway.ts';
import { signUpUser, useTestDb } from '../helpers/db.ts';
import { type AuthUser } from '../helpers/gotrue.ts';
import {
  afterUserCreatedBody,
  type AuthUserRow,
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
} from '../helpers/supabase-auth.ts';
import {
  fullEnv,
  gatewayFor,
  type HttpClient,
  type RawRequest,
  SECRETS,
  whileServing,
} from './harness.ts';

const PASSWORD_HASH = '$2a$10$LOGSECRETxxHASHabcdefghijklmnopqrstuvwxyzABCDEFGHIJK';
const CONFIRMATION_TOKEN = 'logsecret-confirmation-token-9f8e7d6c5b4a';
const RECOVERY_TOKEN = 'logsecret-recovery-token-1a2b3c4d5e6f';
const REFRESH_TOKEN = 'logsecret-refresh-token-0011223344';
const DB_PASSWORD = 'logsecret-db-password-5566';
const WRONG_TOKEN = 'logsecret-wrong-bearer-77889900aa';
const PHONE = '15550104242';

const db = useTestDb();
let user: AuthUser;
let authRow: AuthUserRow;
const consoleLines: string[] = [];
const allEntries: Record<string, unknown>[] = [];

/** Every string that must never be logged, with a name for the failure message. */
function secrets(extra: Record<string, string> = {}): Record<string, string> {
  const hookB64 = SECRETS.hook.replace('v1,whsec_', '');
  return {
    hookSecret: SECRETS.hook,
    hookSecretKey: hookB64,
    oldHookSecretKey: SECRETS.oldHook.replace('v1,whsec_', ''),
    webhookSecret: SECRETS.webhook,
    adminToken: SECRETS.admin,
    serviceRoleKey: SECRETS.serviceRole,
    secretKey: SECRETS.secretKey,
    passwordHash: PASSWORD_HASH,
    confirmationToken: CONFIRMATION_TOKEN,
    recoveryToken: RECOVERY_TOKEN,
    refreshToken: REFRESH_TOKEN,
    dbPassword: DB_PASSWORD,
    wrongToken: WRONG_TOKEN,
    email: user.email!,
    phone: PHONE,
    ...extra,
  };
}

beforeAll(async () => {
  user = await signUpUser(db, 'logsecret', {
    data: { full_name: 'Log Secret', password: 'logsecret-plaintext-in-metadata' },
  });
  await db.query(
    `update auth.users set encrypted_password = $2, confirmation_token = $3, recovery_token = $4,
       phone = $5 where id = $1`,
    [user.id, PASSWORD_HASH, CONFIRMATION_TOKEN, RECOVERY_TOKEN, PHONE],
  );
  authRow = (await db.query<AuthUserRow>('select * from auth.users where id = $1', [user.id]))[0]!;
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map(String).join(' '));
    });
  }
}, 120_000);

afterAll(() => {
  vi.restoreAllMocks();
});

/** Sends every request kind there is, through the given client, and returns the status codes. */
async function sendEverything(client: HttpClient, userId: string): Promise<number[]> {
  const statuses: number[] = [];
  const send = async (req: RawRequest) => statuses.push((await client.call(req)).status);
  const hook = async (name: string, body: string, secret: string = SECRETS.hook) => {
    const headers = {
      authorization: `Bearer ${SECRETS.serviceRole}`,
      cookie: `sb-refresh-token=${REFRESH_TOKEN}`,
    };
    statuses.push((await client.hook(name, body, { secret, headers })).status);
  };
  const row = { ...authRow, id: userId };
  const claims = defaultClaims(userId, {
    email: user.email!,
    phone: PHONE,
    user_metadata: { refresh_token: REFRESH_TOKEN, password_hash: PASSWORD_HASH },
  });
  // Success paths.
  await hook(
    'before-user-created',
    beforeUserCreatedBody({ ...row, email: row.email ?? undefined }),
  );
  await hook('after-user-created', afterUserCreatedBody(row));
  await hook('custom-access-token', customAccessTokenBody(userId, claims));
  // A refusal (200 with an error object) that quotes the asked role, not the secrets.
  await hook(
    'before-user-created',
    beforeUserCreatedBody({
      ...row,
      email: row.email ?? undefined,
      raw_user_meta_data: { role: RECOVERY_TOKEN },
    }),
  );
  // Wrong signature, the old secret, a body that is not JSON, a payload of the wrong shape.
  await hook('after-user-created', afterUserCreatedBody(row), 'v1,whsec_' + btoa('w'.repeat(32)));
  await hook('after-user-created', `not json ${PASSWORD_HASH} ${SECRETS.webhook}`);
  await hook(
    'custom-access-token',
    JSON.stringify({ user_id: PASSWORD_HASH, claims: { refresh_token: REFRESH_TOKEN } }),
  );
  await hook('after-user-created', JSON.stringify({ user: { ...row, id: CONFIRMATION_TOKEN } }));

  const record = {
    ...row,
    encrypted_password: PASSWORD_HASH,
    confirmation_token: CONFIRMATION_TOKEN,
    recovery_token: RECOVERY_TOKEN,
  };
  const webhookBody = (type: string, rec: unknown) =>
    JSON.stringify({ type, table: 'users', schema: 'auth', record: rec, old_record: record });
  for (const authorization of [`Bearer ${SECRETS.webhook}`, `Bearer ${WRONG_TOKEN}`, '']) {
    await send({
      method: 'POST',
      path: '/webhooks/auth-users',
      headers: { authorization, 'content-type': 'application/json' },
      body: webhookBody('UPDATE', record),
    });
  }
  await send({
    method: 'POST',
    path: '/webhooks/auth-users',
    headers: { authorization: `Bearer ${SECRETS.webhook}` },
    body: webhookBody('UPDATE', { ...record, id: PASSWORD_HASH }),
  });
  for (const token of [SECRETS.admin, SECRETS.secretKey, WRONG_TOKEN]) {
    await send({
      method: 'POST',
      path: '/resync',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ dry_run: true, user_ids: [userId] }),
    });
  }
  await send({
    method: 'POST',
    path: '/resync',
    headers: { authorization: `Bearer ${SECRETS.admin}` },
    body: JSON.stringify({ [REFRESH_TOKEN]: PASSWORD_HASH, user_ids: [CONFIRMATION_TOKEN] }),
  });
  await send({ method: 'GET', path: `/health?token=${WRONG_TOKEN}` });
  // The request path is logged (unmatched ones too, as the platform's own logs do): a secret
  // never belongs in a URL. Query strings are not logged.
  await send({ method: 'POST', path: '/webhooks/auth-users/extra', body: PASSWORD_HASH });
  return statuses;
}

/**
 * Everything sent on a server over `gateway`: the status codes, and what the app logged as
 * jsonLogger prints it (its entries kept for the last test too).
 */
async function everythingOn(gateway: Gateway) {
  return await whileServing(gateway, fullEnv, async (client, server) => {
    consoleLines.length = 0;
    const statuses = await sendEverything(client, user.id);
    allEntries.push(...server.logger.entries);
    return { statuses, entries: server.logger.entries, logged: server.logger.text() };
  });
}

function leaks(text: string, names: Record<string, string>): string[] {
  return Object.entries(names).filter(([, value]) => text.includes(value)).map(([name]) => name);
}

describe('secrets never reach the logs', () => {
  it('with the database up: every route, success and error paths, logs none of them', async () => {
    const { statuses, entries, logged } = await everythingOn(gatewayFor(db));
    // The paths really ran: successes, refusals and errors.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(7);
    expect(statuses).toEqual(expect.arrayContaining([200, 400, 401, 404]));
    expect(entries.length).toBeGreaterThanOrEqual(18);
    // The capture is real: the user id and the outcomes are there, only the secrets are not.
    expect(logged).toContain(user.id);
    expect(logged).toContain('"outcome":"claims_added"');
    expect(leaks(logged, secrets())).toEqual([]);
    expect(leaks(consoleLines.join('\n'), secrets())).toEqual([]);
    // A request path is logged, but it is only ever a route name here, never a query.
    expect(logged).not.toContain('?token=');
    expect(logged).not.toContain('logsecret-plaintext-in-metadata');
  });

  it('with the database unreachable (a connection string holding a password): degraded and error answers log none of them', async () => {
    const { statuses, entries, logged } = await everythingOn(
      createDirectGateway(
        postgresExecutor(`postgres://postgres:${DB_PASSWORD}@127.0.0.1:1/postgres`),
      ),
    );
    expect(statuses).toEqual(expect.arrayContaining([200, 401, 503]));
    expect(entries.some((e) => e.outcome === 'deferred')).toBe(true);
    expect(entries.some((e) => e.outcome === 'claims_unchanged')).toBe(true);
    expect(leaks(logged, secrets())).toEqual([]);
    expect(leaks(consoleLines.join('\n'), secrets())).toEqual([]);
    expect(logged).not.toContain('127.0.0.1:1');
  });

  it('every log entry is flat: plain values only, and no field that could carry a header, body or row', () => {
    expect(allEntries.length).toBeGreaterThanOrEqual(36);
    const nested = allEntries.filter((e) =>
      Object.values(e).some((v) => v !== null && v !== undefined && typeof v === 'object')
    );
    expect(nested).toEqual([]);
    const fields = new Set(allEntries.flatMap((e) => Object.keys(e)));
    for (
      const forbidden of ['headers', 'body', 'record', 'authorization', 'claims', 'user', 'token']
    ) {
      expect(fields.has(forbidden)).toBe(false);
    }
  });
});
