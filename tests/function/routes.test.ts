import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../shared/gateway.ts';
import {
  ADMIN_TOKEN,
  BASE,
  baseEnv,
  fakeClock,
  HOOK_SECRET,
  PROTECTED_PATHS,
  SECRET_KEY,
  SERVICE_ROLE_KEY,
  testApp,
  unavailable,
  WEBHOOK_SECRET,
} from './fakes.ts';

const USER_ID = '8ccaa7af-909f-44e7-84cb-67cdccb56be6';
const PASSWORD_HASH = '$2a$10$abcdefghijklmnopqrstuvEXAMPLEHASHxxxxxxxxxxxxxxxxxx';
const WEBHOOK = `${BASE}/webhooks/auth-users`;
const RESYNC = `${BASE}/resync`;

/**
 * A pg_net payload as supabase_functions.http_request builds it (jsonb text,
 * docs/reference/database-webhooks.md#payload).
 */
function pgNetBody(type: string, table = 'users', schema = 'auth') {
  const row = {
    id: USER_ID,
    email: 'a@example.com',
    encrypted_password: PASSWORD_HASH,
    confirmation_token: 'tok-123',
    raw_app_meta_data: { provider: 'email' },
  };
  const payload = {
    type,
    table,
    record: type === 'DELETE' ? null : row,
    schema,
    old_record: type === 'INSERT' ? null : row,
  };
  return JSON.stringify(payload).replaceAll('":', '": ').replaceAll(',"', ', "');
}

const post = (_url: string, body: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body,
});

const BAD_BEARERS: Array<[string, Record<string, string>]> = [
  ['no header', {}],
  ['empty', { authorization: '' }],
  ['"null"', { authorization: 'null' }],
  ['"Bearer"', { authorization: 'Bearer' }],
  ['"Bearer "', { authorization: 'Bearer ' }],
  ['"Bearer null"', { authorization: 'Bearer null' }],
  ['wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
  ['token prefix', { authorization: `Bearer ${WEBHOOK_SECRET.slice(0, -1)}` }],
  ['token with extra', { authorization: `Bearer ${WEBHOOK_SECRET}x` }],
  ['Basic scheme', { authorization: `Basic ${WEBHOOK_SECRET}` }],
  ['bare token', { authorization: WEBHOOK_SECRET }],
];

describe('POST /webhooks/auth-users', () => {
  it('syncs the user of an INSERT, UPDATE and DELETE on auth.users', async () => {
    for (const type of ['INSERT', 'UPDATE', 'DELETE']) {
      const { app, gateway } = testApp();
      gateway.always(() => ({ user_id: USER_ID, action: 'updated', role: 'client' }));
      const res = await app.request(
        WEBHOOK,
        post(WEBHOOK, pgNetBody(type), { authorization: `Bearer ${WEBHOOK_SECRET}` }),
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ user_id: USER_ID, action: 'updated', role: 'client' });
      expect(gateway.calls.map((c) => [c.fn, c.args])).toEqual([['sync_user', {
        p_user_id: USER_ID,
        p_source: 'webhook',
      }]]);
    }
  });

  it('acknowledges other tables and operations with 200 and ignores them', async () => {
    const { app, gateway } = testApp();
    const auth = { authorization: `Bearer ${WEBHOOK_SECRET}` };
    for (
      const body of [
        pgNetBody('INSERT', 'identities'),
        pgNetBody('UPDATE', 'users', 'public'),
        pgNetBody('TRUNCATE'),
      ]
    ) {
      const res = await app.request(WEBHOOK, post(WEBHOOK, body, auth));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ignored: true });
    }
    expect(gateway.calls).toEqual([]);
  });

  it.each(BAD_BEARERS)('refuses %s with 401', async (_name, headers) => {
    const { app, gateway } = testApp();
    const res = await app.request(WEBHOOK, post(WEBHOOK, pgNetBody('INSERT'), headers));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect((await res.json()).error.code).toBe('unauthorized');
    expect(gateway.calls).toEqual([]);
  });

  it('accepts the scheme in any case', async () => {
    const { app } = testApp();
    const res = await app.request(
      WEBHOOK,
      post(WEBHOOK, pgNetBody('INSERT'), { authorization: `bearer ${WEBHOOK_SECRET}` }),
    );
    expect(res.status).toBe(200);
  });

  it('does not accept the admin token or service key (each route has its own secret)', async () => {
    const { app } = testApp();
    for (const token of [ADMIN_TOKEN, SERVICE_ROLE_KEY, SECRET_KEY]) {
      const res = await app.request(
        WEBHOOK,
        post(WEBHOOK, pgNetBody('INSERT'), { authorization: `Bearer ${token}` }),
      );
      expect(res.status).toBe(401);
    }
  });

  it('is disabled with 503 when USER_SYNC_WEBHOOK_SECRET is unset', async () => {
    const { app } = testApp({ ...baseEnv, USER_SYNC_WEBHOOK_SECRET: '' });
    const res = await app.request(
      WEBHOOK,
      post(WEBHOOK, pgNetBody('INSERT'), { authorization: 'Bearer x' }),
    );
    expect(res.status).toBe(503);
    expect((await res.json()).error.message).toBe(
      'USER_SYNC_WEBHOOK_SECRET is not set: the database webhook route is disabled.',
    );
  });

  it('answers 400 for a body that is not JSON or has no user id', async () => {
    const { app } = testApp();
    const auth = { authorization: `Bearer ${WEBHOOK_SECRET}` };
    expect((await app.request(WEBHOOK, post(WEBHOOK, 'nope', auth))).status).toBe(400);
    const noId = JSON.stringify({
      type: 'INSERT',
      table: 'users',
      schema: 'auth',
      record: { email: 'x' },
      old_record: null,
    });
    const res = await app.request(WEBHOOK, post(WEBHOOK, noId, auth));
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toBe('The event has no user id (record.id).');
  });

  it('answers 503 when the database is unreachable', async () => {
    const { app, gateway } = testApp();
    gateway.always(unavailable);
    const res = await app.request(
      WEBHOOK,
      post(WEBHOOK, pgNetBody('UPDATE'), { authorization: `Bearer ${WEBHOOK_SECRET}` }),
    );
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('database_unavailable');
  });

  it('never logs the record, the password hash or the secret', async () => {
    const { app, logger } = testApp();
    await app.request(
      WEBHOOK,
      post(WEBHOOK, pgNetBody('UPDATE'), { authorization: `Bearer ${WEBHOOK_SECRET}` }),
    );
    await app.request(
      WEBHOOK,
      post(WEBHOOK, pgNetBody('UPDATE'), { authorization: 'Bearer wrong-token-0123456789' }),
    );
    const logs = JSON.stringify(logger.entries);
    expect(logger.entries).toHaveLength(2);
    for (
      const secret of [PASSWORD_HASH, 'tok-123', 'a@example.com', WEBHOOK_SECRET, 'wrong-token']
    ) {
      expect(logs).not.toContain(secret);
    }
    expect(logger.entries[0]).toMatchObject({ user_id: USER_ID, outcome: 'synced', status: 200 });
  });
});

type Report = Record<string, number | boolean | string | null>;
const report = (over: Partial<Report> = {}): Report => ({
  dry_run: false,
  scope: 'batch',
  auth_users: 10,
  app_users: 9,
  missing: 1,
  stale: 2,
  orphaned: 0,
  inserted: 1,
  updated: 2,
  deleted: 0,
  unchanged: 7,
  failed: 0,
  failures_pending: 0,
  next_cursor: null,
  done: true,
  ...over,
});
const cursor = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('POST /resync', () => {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  it('accepts the admin token, the service-role key and the secret key', async () => {
    for (const token of [ADMIN_TOKEN, SERVICE_ROLE_KEY, SECRET_KEY]) {
      const { app, gateway } = testApp();
      gateway.always(() => report());
      const res = await app.request(
        RESYNC,
        post(RESYNC, '{}', { authorization: `Bearer ${token}` }),
      );
      expect(res.status).toBe(200);
    }
  });

  it.each(BAD_BEARERS)('refuses %s with 401', async (_name, headers) => {
    const { app, gateway } = testApp();
    const res = await app.request(RESYNC, post(RESYNC, '{}', headers));
    expect(res.status).toBe(401);
    expect(gateway.calls).toEqual([]);
  });

  it("accepts the project's secret key in the apikey header, as Supabase clients send it", async () => {
    for (const key of [SECRET_KEY, SERVICE_ROLE_KEY]) {
      const { app, gateway } = testApp();
      gateway.always(() => report());
      // supabase-js also sends a publishable key or a user JWT as the bearer: the apikey decides.
      const res = await app.request(
        RESYNC,
        post(RESYNC, '{}', { apikey: key, authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x' }),
      );
      expect(res.status).toBe(200);
      expect(gateway.calls.length).toBeGreaterThan(0);
    }
  });

  it.each([
    ['the admin token', ADMIN_TOKEN],
    ['the webhook secret', WEBHOOK_SECRET],
    ['a wrong key', 'sb_secret_wrongwrongwrongwrongwrong'],
    ['an empty value', ''],
    ['the key with a character added', `${SECRET_KEY}x`],
  ])('refuses %s in the apikey header with the same 401', async (_name, key) => {
    const { app, gateway } = testApp();
    const res = await app.request(RESYNC, post(RESYNC, '{}', { apikey: key }));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toMatchObject({
      error: { code: 'unauthorized', message: 'Missing or wrong bearer token or apikey.' },
    });
    expect(gateway.calls).toEqual([]);
  });

  it('refuses the webhook secret and the hook secret', async () => {
    const { app } = testApp();
    for (const token of [WEBHOOK_SECRET, HOOK_SECRET]) {
      expect(
        (await app.request(RESYNC, post(RESYNC, '{}', { authorization: `Bearer ${token}` })))
          .status,
      ).toBe(401);
    }
  });

  it('is disabled with 503 when no token is configured', async () => {
    const { app } = testApp({ AUTH_HOOK_SECRET: HOOK_SECRET });
    const res = await app.request(RESYNC, post(RESYNC, '{}', { authorization: 'Bearer ' }));
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('not_configured');
  });

  it('walks every batch, summing the counts', async () => {
    const { app, gateway } = testApp();
    gateway.answer(
      () => report({ next_cursor: cursor(1), done: false }),
      () => report({ next_cursor: cursor(2), done: false }),
      () => report({ next_cursor: null, done: true, failures_pending: 3 }),
    );
    const res = await app.request(RESYNC, post(RESYNC, JSON.stringify({ batch_size: 500 }), admin));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      dry_run: false,
      scope: 'batches',
      batches: 3,
      auth_users: 30,
      app_users: 27,
      missing: 3,
      stale: 6,
      inserted: 3,
      updated: 6,
      unchanged: 21,
      failures_pending: 3,
      next_cursor: null,
      done: true,
    });
    expect(gateway.calls.map((c) => c.args)).toEqual([
      { p_dry_run: false, p_user_ids: null, p_batch_size: 500, p_cursor: null },
      { p_dry_run: false, p_user_ids: null, p_batch_size: 500, p_cursor: cursor(1) },
      { p_dry_run: false, p_user_ids: null, p_batch_size: 500, p_cursor: cursor(2) },
    ]);
  });

  it('stops when the time budget is spent and returns the cursor to continue from', async () => {
    const clock = fakeClock();
    const { app, gateway } = testApp(baseEnv, { clock, config: { resyncBudgetMs: 50_000 } });
    let n = 0;
    gateway.always(() => {
      clock.advance(20_000);
      n++;
      return report({ next_cursor: cursor(n), done: false });
    });
    const body =
      await (await app.request(RESYNC, post(RESYNC, '{"cursor":"' + cursor(0) + '"}', admin)))
        .json();
    // 20 s + 20 s = 40 s; a third batch would end at 60 s > 50 s.
    expect(body).toMatchObject({ batches: 2, done: false, next_cursor: cursor(2), auth_users: 20 });
    expect(gateway.calls[0]!.args['p_cursor']).toBe(cursor(0));
  });

  it('passes dry_run and user_ids through', async () => {
    const { app, gateway } = testApp();
    gateway.always(() => report({ dry_run: true, scope: 'ids', inserted: 0, updated: 0 }));
    const res = await app.request(
      RESYNC,
      post(RESYNC, JSON.stringify({ dry_run: true, user_ids: [USER_ID] }), admin),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ dry_run: true, scope: 'ids', batches: 1 });
    expect(gateway.calls.map((c) => [c.fn, c.args])).toEqual([
      ['resync_users', { p_dry_run: true, p_user_ids: [USER_ID] }],
    ]);
  });

  it('reads a JSON body even without a JSON Content-Type (curl -d), so dry_run is never lost', async () => {
    const { app, gateway } = testApp();
    gateway.always(() => report({ dry_run: true }));
    const res = await app.request(RESYNC, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"dry_run":true}',
    });
    expect(res.status).toBe(200);
    expect(gateway.calls[0]!.args['p_dry_run']).toBe(true);
  });

  it('accepts an empty body as {}', async () => {
    const { app, gateway } = testApp();
    gateway.always(() => report());
    expect((await app.request(RESYNC, { method: 'POST', headers: admin })).status).toBe(200);
    expect(gateway.calls[0]!.args['p_dry_run']).toBe(false);
  });

  it.each([
    ['not JSON', 'dry_run=true', 'invalid_json'],
    ['a misspelt key', '{"dryRun":true}', 'invalid_payload'],
    ['a string boolean', '{"dry_run":"true"}', 'invalid_payload'],
    ['a bad uuid', '{"user_ids":["x"]}', 'invalid_payload'],
    ['an empty id list', '{"user_ids":[]}', 'invalid_payload'],
    ['batch_size 0', '{"batch_size":0}', 'invalid_payload'],
    ['batch_size too big', '{"batch_size":50001}', 'invalid_payload'],
    ['ids with a cursor', `{"user_ids":["${USER_ID}"],"cursor":"${USER_ID}"}`, 'invalid_payload'],
    ['an array', '[]', 'invalid_payload'],
  ])('refuses %s with 400', async (_name, body, code) => {
    const { app, gateway } = testApp();
    const res = await app.request(RESYNC, post(RESYNC, body, admin));
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe(code);
    expect(gateway.calls).toEqual([]);
  });

  it('fails with 500 instead of looping when a batch does not move the cursor', async () => {
    const { app, gateway } = testApp();
    gateway.always(() => report({ next_cursor: cursor(1), done: false }));
    const res = await app.request(RESYNC, post(RESYNC, '{}', admin));
    expect(res.status).toBe(500);
    expect(gateway.calls).toHaveLength(2);
  });

  it("passes the SQL function's own sentence for bad arguments (22023)", async () => {
    const { app, gateway } = testApp();
    gateway.always(() =>
      new GatewayError('invalid_argument', 'p_batch_size must be between 1 and 50000.', '22023')
    );
    const res = await app.request(RESYNC, post(RESYNC, '{}', admin));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({
      code: 'invalid_argument',
      message: 'p_batch_size must be between 1 and 50000.',
    });
  });
});

describe('GET /health', () => {
  it('reports liveness and database reachability', async () => {
    const { app, gateway } = testApp();
    const res = await app.request(`${BASE}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok' });
    expect(gateway.pings).toBe(1);
  });

  it('answers 503 when the database does not answer', async () => {
    const { app, gateway } = testApp();
    gateway.pingError = unavailable();
    const res = await app.request(`${BASE}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: 'unavailable',
      database: 'unreachable',
      error: { code: 'database_unavailable' },
    });
  });

  it('works without any secret configured', async () => {
    const { app } = testApp({});
    expect((await app.request(`${BASE}/health`)).status).toBe(200);
  });
});

describe('routing and errors', () => {
  it('answers 404 in the error shape for unknown routes and paths outside the base path', async () => {
    const { app } = testApp();
    for (
      const url of [
        `${BASE}/nope`,
        `${BASE}/hooks/send-email`,
        'http://localhost/other/health',
        `${BASE}`,
      ]
    ) {
      const res = await app.request(url, { method: 'POST' });
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    }
  });

  it('accepts a trailing slash (a hook URI configured as …/before-user-created/)', async () => {
    const { app } = testApp();
    const res = await app.request(`${BASE}/hooks/before-user-created/`, { method: 'POST' });
    expect(res.status).toBe(401);
    expect((await app.request(`${BASE}/health/`)).status).toBe(200);
  });

  it('answers HEAD /health like GET, without a body', async () => {
    const { app } = testApp();
    const res = await app.request(`${BASE}/health`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('answers 405 with an Allow header for a wrong method', async () => {
    const { app } = testApp();
    for (const path of PROTECTED_PATHS) {
      const res = await app.request(`${BASE}${path}`, { method: 'GET' });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect((await res.json()).error.code).toBe('method_not_allowed');
    }
    const res = await app.request(`${BASE}/health`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 413 above the body limit, with or without Content-Length', async () => {
    const { app, config } = testApp();
    const big = 'x'.repeat(config.bodyLimitBytes + 1);
    const withLength = await app.request(`${BASE}/hooks/before-user-created`, {
      method: 'POST',
      headers: { 'content-length': String(big.length) },
      body: big,
    });
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).error.code).toBe('payload_too_large');
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const chunked = await app.request(`${BASE}/resync`, {
      method: 'POST',
      body: stream,
      // @ts-expect-error: Node's fetch needs duplex for a streamed body
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
  });

  it('accepts a body close to 200 KiB', async () => {
    const { app, gateway } = testApp();
    gateway.always(() => report());
    const res = await app.request(
      `${BASE}/resync`,
      post(RESYNC, ' '.repeat(200 * 1024) + '{}', { authorization: `Bearer ${ADMIN_TOKEN}` }),
    );
    expect(res.status).toBe(200);
  });

  it('turns an unexpected error into a 500 without internals, and logs only its kind', async () => {
    const { app, gateway, logger } = testApp();
    gateway.always(() => {
      throw new Error(`connection to postgres://postgres:${ADMIN_TOKEN}@db failed`);
    });
    const res = await app.request(
      RESYNC,
      post(RESYNC, '{}', { authorization: `Bearer ${ADMIN_TOKEN}` }),
    );
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body).toEqual({
      error: {
        code: 'internal_error',
        message: 'Internal error',
        request_id: res.headers.get('x-request-id'),
      },
    });
    expect(JSON.stringify(logger.entries)).not.toContain(ADMIN_TOKEN);
    expect(logger.entries.map((e) => e.event)).toEqual(['unhandled_error', 'request']);
  });

  it('hides gateway errors that are not for the caller (missing grant, missing function)', async () => {
    const { app, gateway } = testApp();
    gateway.always(() =>
      new GatewayError('not_found', 'function public.resync_users does not exist', '42883')
    );
    const res = await app.request(
      RESYNC,
      post(RESYNC, '{}', { authorization: `Bearer ${ADMIN_TOKEN}` }),
    );
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain('resync_users');
  });

  it('logs one JSON line per request with route, outcome, duration and request id', async () => {
    const { app, logger } = testApp();
    const res = await app.request(`${BASE}/health`, { headers: { 'x-request-id': 'req-123' } });
    expect(res.headers.get('x-request-id')).toBe('req-123');
    expect(logger.entries).toEqual([
      expect.objectContaining({
        level: 'info',
        event: 'request',
        request_id: 'req-123',
        method: 'GET',
        route: '/user-sync/health',
        status: 200,
        outcome: 'ok',
        duration_ms: expect.any(Number),
      }),
    ]);
    const generated = await app.request(`${BASE}/health`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
