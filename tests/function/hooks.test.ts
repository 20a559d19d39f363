import { describe, expect, it } from 'vitest';
import {
  afterUserCreatedBody,
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  hookHeaders,
  hookRequest,
} from '../helpers/supabase-auth.ts';
import { GatewayError } from '../../shared/gateway.ts';
import {
  AFTER_USER_CREATED_RETRY,
  BEFORE_USER_CREATED_RETRY,
  CUSTOM_ACCESS_TOKEN_RETRY,
} from '../../shared/timeouts.ts';
import {
  BASE,
  baseEnv,
  HOOK_SECRET,
  OLD_HOOK_SECRET,
  REQUIRED_CLAIMS,
  testApp,
  unavailable,
} from './fakes.ts';

const BEFORE = `${BASE}/hooks/before-user-created`;
const AFTER = `${BASE}/hooks/after-user-created`;
const TOKEN = `${BASE}/hooks/custom-access-token`;
const USER_ID = 'ff7fc9ae-3b1b-4642-9241-64adb9848a03';
const now = () => Math.floor(Date.now() / 1000);

async function send(
  app: ReturnType<typeof testApp>['app'],
  url: string,
  body: string,
  opts: { secrets?: string; timestamp?: number; headers?: Record<string, string | null> } = {},
) {
  const headers = await hookHeaders(body, {
    secrets: opts.secrets ?? HOOK_SECRET,
    timestamp: opts.timestamp,
  });
  const merged = new Headers();
  for (const [k, v] of Object.entries({ ...headers, ...opts.headers })) {
    if (v !== null) merged.set(k, v);
  }
  return app.request(url, { method: 'POST', headers: merged, body });
}

/** A hook sent to the app whose database never answers: the answer, the time it took, the log. */
async function withDatabaseDown(url: string, body: string) {
  const { app, gateway, logger, clock } = testApp();
  gateway.always(unavailable);
  const started = clock.now();
  const res = await send(app, url, body);
  return {
    res,
    elapsed: clock.now() - started,
    calls: gateway.calls,
    logged: logger.entries.at(-1),
  };
}

describe('hook signature (every hook route)', () => {
  const body = beforeUserCreatedBody({ id: USER_ID, email: 'a@example.com' });

  it('accepts a body signed exactly as Supabase Auth signs it', async () => {
    const { app } = testApp();
    const res = await app.request(await hookRequest(BEFORE, body, { secrets: HOOK_SECRET }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({});
  });

  it('refuses a wrong secret with 401 and touches no database', async () => {
    for (const url of [BEFORE, AFTER, TOKEN]) {
      const { app, gateway } = testApp();
      const res = await send(app, url, body, { secrets: OLD_HOOK_SECRET });
      expect(res.status).toBe(401);
      const json = await res.json();
      expect(json.error.code).toBe('invalid_signature');
      expect(json.error.message).toMatch(/No matching signature/);
      expect(gateway.calls).toEqual([]);
    }
  });

  it('refuses a tampered body', async () => {
    const { app } = testApp();
    const req = await hookRequest(BEFORE, body, { secrets: HOOK_SECRET });
    const tampered = body.replace('a@example.com', 'b@example.com');
    const res = await app.request(BEFORE, { method: 'POST', headers: req.headers, body: tampered });
    expect(res.status).toBe(401);
  });

  it('verifies the raw bytes: the same JSON with different spacing fails', async () => {
    const { app } = testApp();
    const req = await hookRequest(BEFORE, body, { secrets: HOOK_SECRET });
    const respaced = JSON.stringify(JSON.parse(body), null, 1);
    const res = await app.request(BEFORE, { method: 'POST', headers: req.headers, body: respaced });
    expect(res.status).toBe(401);
  });

  it('refuses timestamps more than 5 minutes old or ahead, accepts within', async () => {
    const { app } = testApp();
    const old = await send(app, BEFORE, body, { timestamp: now() - 6 * 60 });
    expect(old.status).toBe(401);
    expect((await old.json()).error.message).toMatch(/too old/);
    const future = await send(app, BEFORE, body, { timestamp: now() + 6 * 60 });
    expect(future.status).toBe(401);
    expect((await future.json()).error.message).toMatch(/too new/);
    expect((await send(app, BEFORE, body, { timestamp: now() - 4 * 60 })).status).toBe(200);
    expect((await send(app, BEFORE, body, { timestamp: now() + 4 * 60 })).status).toBe(200);
  });

  it('refuses a timestamp that is not a number', async () => {
    const { app } = testApp();
    const res = await send(app, BEFORE, body, { headers: { 'webhook-timestamp': 'soon' } });
    expect(res.status).toBe(401);
  });

  it('accepts either secret during rotation (AUTH_HOOK_SECRET="old|new")', async () => {
    const { app } = testApp({ ...baseEnv, AUTH_HOOK_SECRET: `${OLD_HOOK_SECRET}|${HOOK_SECRET}` });
    expect((await send(app, BEFORE, body, { secrets: OLD_HOOK_SECRET })).status).toBe(200);
    expect((await send(app, BEFORE, body, { secrets: HOOK_SECRET })).status).toBe(200);
    const other = 'v1,whsec_' + btoa('x'.repeat(32));
    expect((await send(app, BEFORE, body, { secrets: other })).status).toBe(401);
  });

  it('accepts a header with several signatures when any one matches', async () => {
    const { app } = testApp();
    const other = 'v1,whsec_' + btoa('y'.repeat(32));
    // Supabase Auth configured with `other|ours`: the matching signature is the second one.
    const res = await send(app, BEFORE, body, { secrets: `${other}|${HOOK_SECRET}` });
    expect(res.status).toBe(200);
    const first = await send(app, BEFORE, body, { secrets: `${HOOK_SECRET}|${other}` });
    expect(first.status).toBe(200);
  });

  it('refuses each missing signature header', async () => {
    const { app } = testApp();
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const res = await send(app, BEFORE, body, { headers: { [name]: null } });
      expect(res.status).toBe(401);
      expect((await res.json()).error.message).toContain(name);
    }
    const empty = await send(app, BEFORE, body, { headers: { 'webhook-signature': '' } });
    expect(empty.status).toBe(401);
  });

  it('answers 400 (not 401) for a validly signed body that is not JSON', async () => {
    const { app, gateway } = testApp();
    for (const notJson of ['not json', '', '{"user":']) {
      const res = await send(app, AFTER, notJson);
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({
        code: 'invalid_json',
        message: 'The body is signed correctly but is not JSON.',
      });
    }
    expect(gateway.calls).toEqual([]);
  });

  it('answers 400 with what is wrong for a signed body of the wrong shape', async () => {
    const { app, gateway } = testApp();
    const res = await send(app, AFTER, JSON.stringify({ user: { id: 'not-a-uuid' } }));
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('invalid_payload');
    expect(error.message).toContain('user.id: must be a UUID');
    expect(gateway.calls).toEqual([]);
    const arr = await send(app, TOKEN, '[]');
    expect(arr.status).toBe(400);
  });

  it('is disabled with 503 when AUTH_HOOK_SECRET is unset', async () => {
    const { app } = testApp({ ...baseEnv, AUTH_HOOK_SECRET: undefined });
    const res = await send(app, BEFORE, body);
    expect(res.status).toBe(503);
    expect((await res.json()).error).toMatchObject({
      code: 'not_configured',
      message: 'AUTH_HOOK_SECRET is not set: the Auth hook routes are disabled.',
    });
  });
});

describe('POST /hooks/before-user-created', () => {
  const ask = (user_metadata: Record<string, unknown>) =>
    beforeUserCreatedBody({
      id: USER_ID,
      email: 'a@example.com',
      raw_user_meta_data: user_metadata,
    });

  // Which roles may be chosen is the database's answer: tests/function/before-user-created.test.ts.
  it('allows a sign-up that asks for no role without the database', async () => {
    const { app, gateway } = testApp();
    for (const meta of [{}, { role: null }, { role: '' }, { full_name: 'A <b>' }]) {
      const res = await send(app, BEFORE, ask(meta));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
    }
    expect(gateway.calls).toEqual([]);
    expect(gateway.pings).toBe(0);
  });

  it('asks the database only for the role, and passes its refusal on as Auth reads it', async () => {
    const { app, gateway, logger } = testApp();
    const refusal = { error: { http_code: 400, message: 'The role "admin" cannot be chosen.' } };
    gateway.answer(() => refusal);
    const res = await send(app, BEFORE, ask({ role: 'admin', full_name: 'x'.repeat(1000) }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(refusal);
    expect(gateway.calls.map(({ fn, args }) => ({ fn, args }))).toEqual([{
      fn: 'hook_before_user_created',
      args: { event: { user: { user_metadata: { role: 'admin' } } } },
    }]);
    expect(gateway.calls[0]!.options!.timeoutMs).toBeLessThanOrEqual(1500);
    expect(logger.entries.at(-1)).toMatchObject({ outcome: 'rejected', status: 200 });
  });

  it('lets the sign-up through, logged as unchecked, when the database cannot answer', async () => {
    const { res, elapsed, calls, logged } = await withDatabaseDown(BEFORE, ask({ role: 'admin' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(calls.length).toBeGreaterThan(1); // retried, within the budget:
    expect(elapsed).toBeLessThanOrEqual(BEFORE_USER_CREATED_RETRY.budgetMs);
    expect(logged).toMatchObject({
      level: 'warn',
      outcome: 'unchecked',
      detail: 'unavailable:ECONNREFUSED',
    });
  });

  it('accepts GoTrue payload variants: null metadata maps, unknown fields, anonymous users', async () => {
    const { app } = testApp();
    const body = JSON.stringify({
      metadata: {
        uuid: USER_ID,
        time: '2025-04-29T13:13:24.755552-07:00',
        name: 'before-user-created',
      },
      user: {
        id: USER_ID,
        aud: 'authenticated',
        role: '',
        email: '',
        phone: '',
        app_metadata: {},
        user_metadata: null,
        identities: null,
        created_at: '0001-01-01T00:00:00Z',
        updated_at: '0001-01-01T00:00:00Z',
        is_anonymous: true,
        some_future_field: { x: 1 },
      },
      another_future_field: true,
    });
    expect((await send(app, BEFORE, body)).status).toBe(200);
  });
});

describe('POST /hooks/after-user-created', () => {
  const body = afterUserCreatedBody({
    id: USER_ID,
    aud: 'authenticated',
    role: 'authenticated',
    email: 'a@example.com',
    created_at: '2025-01-01 00:00:00.123456+00',
    updated_at: '2025-01-01 00:00:00.123456+00',
  });

  it('syncs the user by id and answers 200 {}', async () => {
    const { app, gateway, logger } = testApp();
    gateway.always(() => ({ user_id: USER_ID, action: 'unchanged', role: 'client' }));
    const res = await send(app, AFTER, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(gateway.calls).toHaveLength(1);
    expect(gateway.calls[0]).toMatchObject({
      fn: 'sync_user',
      args: { p_user_id: USER_ID, p_source: 'hook:after-user-created' },
    });
    expect(gateway.calls[0]!.options!.timeoutMs).toBeLessThanOrEqual(1500);
    expect(logger.entries.at(-1)).toMatchObject({
      event: 'request',
      user_id: USER_ID,
      outcome: 'synced',
      detail: 'unchanged',
    });
  });

  it('retries while the database cannot be reached', async () => {
    const { app, gateway, logger } = testApp();
    gateway.answer(
      unavailable,
      unavailable,
      () => ({ user_id: USER_ID, action: 'inserted', role: 'client' }),
    );
    const res = await send(app, AFTER, body);
    expect(res.status).toBe(200);
    expect(gateway.calls).toHaveLength(3);
    expect(logger.entries.at(-1)).toMatchObject({
      outcome: 'synced',
      detail: 'inserted after 3 attempts',
    });
  });

  it('fails open within its budget when the database stays unreachable', async () => {
    const { res, elapsed, calls, logged } = await withDatabaseDown(AFTER, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(elapsed).toBeLessThanOrEqual(AFTER_USER_CREATED_RETRY.budgetMs);
    expect(calls.length).toBeGreaterThan(1);
    expect(logged).toMatchObject({
      level: 'warn',
      outcome: 'deferred',
      detail: 'unavailable:ECONNREFUSED',
    });
  });

  it('does not retry errors that are not about reaching the database', async () => {
    const { app, gateway, logger } = testApp();
    gateway.always(() => new GatewayError('forbidden', 'permission denied', '42501'));
    const res = await send(app, AFTER, body);
    expect(res.status).toBe(200);
    expect(gateway.calls).toHaveLength(1);
    expect(logger.entries.at(-1)).toMatchObject({ outcome: 'deferred', detail: 'forbidden:42501' });
  });

  it('logs a sync that the database recorded as failed as deferred', async () => {
    const { app, gateway, logger } = testApp();
    gateway.always(() => ({ user_id: USER_ID, action: 'failed', role: null, sqlstate: '23505' }));
    expect((await send(app, AFTER, body)).status).toBe(200);
    expect(logger.entries.at(-1)).toMatchObject({ outcome: 'deferred', detail: 'failed' });
  });
});

describe('POST /hooks/custom-access-token', () => {
  const claims = defaultClaims(USER_ID, { email: 'a@example.com' });
  const body = customAccessTokenBody(USER_ID, claims);
  const answer = (over: Record<string, unknown> = {}) => () => ({
    user_id: USER_ID,
    action: 'unchanged',
    role: 'artist',
    user_role: 'artist',
    ...over,
  });

  it("returns every input claim unchanged plus the database's user_role", async () => {
    const { app, gateway } = testApp();
    gateway.always(answer());
    const res = await send(app, TOKEN, body);
    expect(res.status).toBe(200);
    const out = await res.json();
    const input = JSON.parse(body).claims;
    expect(out).toEqual({ claims: { ...input, user_role: 'artist' } });
    for (const required of REQUIRED_CLAIMS) expect(out.claims).toHaveProperty(required);
    expect(gateway.calls[0]).toMatchObject({
      fn: 'sync_user',
      args: { p_user_id: USER_ID, p_source: 'hook:custom-access-token' },
    });
  });

  it('sends the database only the roles the metadata names, as strings', async () => {
    const { app, gateway } = testApp();
    gateway.always(answer());
    const asking = JSON.parse(customAccessTokenBody(USER_ID, {
      ...claims,
      app_metadata: { provider: 'email', role: 'admin' },
      user_metadata: { role: 'producer', full_name: 'x'.repeat(10_000), nested: { a: [1] } },
    }));
    await send(app, TOKEN, JSON.stringify(asking));
    expect(gateway.calls[0]!.args['p_claims']).toEqual({
      app_metadata: { role: 'admin' },
      user_metadata: { role: 'producer' },
    });
    for (
      const [app_metadata, user_metadata] of [
        [{ role: ['admin'] }, { role: { name: 'artist' } }],
        [{ role: 42 }, { role: null }],
        [JSON.parse('{"__proto__":{"role":"admin"}}'), { constructor: { role: 'artist' } }],
      ]
    ) {
      const { app, gateway } = testApp();
      gateway.always(answer());
      const input = JSON.parse(body);
      input.claims.app_metadata = app_metadata;
      input.claims.user_metadata = user_metadata;
      await send(app, TOKEN, JSON.stringify(input));
      expect(gateway.calls[0]!.args['p_claims']).toEqual({ app_metadata: {}, user_metadata: {} });
    }
  });

  it('keeps claims it does not know, and aud as an array', async () => {
    const { app, gateway } = testApp();
    gateway.always(answer({ action: 'inserted', role: 'client', user_role: 'client' }));
    const withExtras = customAccessTokenBody(USER_ID, {
      ...claims,
      aud: ['authenticated'],
      client_id: 'abc',
      scope: 'openid',
    });
    const res = await send(app, TOKEN, withExtras);
    expect(res.status).toBe(200);
    const out = await res.json();
    expect(out.claims.aud).toEqual(['authenticated']);
    expect(out.claims.client_id).toBe('abc');
    expect(out.claims.scope).toBe('openid');
    expect(out.claims.user_role).toBe('client');
  });

  it('returns the claims without user_role when the database fails, within its budget', async () => {
    const { res, elapsed, logged } = await withDatabaseDown(TOKEN, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ claims: JSON.parse(body).claims });
    expect(elapsed).toBeLessThanOrEqual(CUSTOM_ACCESS_TOKEN_RETRY.budgetMs);
    expect(logged).toMatchObject({ outcome: 'claims_unchanged' });
  });

  it("user_role is the database's user_role: not the row's role, not the claims', not an incoming one", async () => {
    const { app, gateway, logger } = testApp();
    // A revoked admin whose sync failed: the row still says admin, the token rule says client.
    gateway.always(answer({ action: 'failed', role: 'admin', user_role: 'client' }));
    const asking = customAccessTokenBody(USER_ID, {
      ...claims,
      app_metadata: { provider: 'email', role: 'admin' },
      user_metadata: { role: 'producer' },
    });
    const withRole = JSON.parse(asking);
    withRole.claims.user_role = 'admin';
    for (const body of [asking, JSON.stringify(withRole)]) {
      const out = await (await send(app, TOKEN, body)).json();
      expect(out.claims.user_role).toBe('client');
      expect(logger.entries.at(-1)).toMatchObject({ outcome: 'claims_added', detail: 'failed' });
    }
  });

  it('an incoming user_role never survives: not without an answer, not without the database', async () => {
    const input = JSON.parse(customAccessTokenBody(USER_ID, {
      ...claims,
      app_metadata: { provider: 'email', role: 'admin' },
    }));
    input.claims.user_role = 'admin';
    const { user_role: _dropped, ...rest } = input.claims;
    for (
      const [answerWith, outcome] of [
        [answer({ action: 'not_found', role: null, user_role: null }), 'no_role'],
        [unavailable, 'claims_unchanged'],
      ] as const
    ) {
      const { app, gateway, logger } = testApp();
      gateway.always(answerWith);
      const out = await (await send(app, TOKEN, JSON.stringify(input))).json();
      expect(out).toEqual({ claims: rest });
      expect(logger.entries.at(-1)).toMatchObject({ outcome });
    }
  });

  it('retries an unreachable database and takes its answer', async () => {
    const { app, gateway } = testApp();
    gateway.answer(unavailable, answer({ action: 'not_found', role: null, user_role: 'producer' }));
    const out = await (await send(app, TOKEN, body)).json();
    expect(out.claims.user_role).toBe('producer');
    expect(gateway.calls).toHaveLength(2);
  });

  it('refuses claims without a required field', async () => {
    const { app, gateway } = testApp();
    const input = JSON.parse(body);
    delete input.claims.sub;
    const res = await send(app, TOKEN, JSON.stringify(input));
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain('claims.sub');
    expect(gateway.calls).toEqual([]);
  });
});

describe('hook logging', () => {
  it('logs one line per call with user id and outcome, and nothing from the body or headers', async () => {
    const { app, gateway, logger } = testApp();
    gateway.always(({ fn }) =>
      fn === 'hook_before_user_created'
        ? { error: { http_code: 400, message: 'The role "admin" cannot be chosen at sign-up.' } }
        : { user_id: USER_ID, action: 'unchanged', role: 'client', user_role: 'client' }
    );
    const email = 'private.person@example.com';
    const after = afterUserCreatedBody({
      id: USER_ID,
      email,
      raw_user_meta_data: { full_name: 'Private Person' },
    });
    const headers = await hookHeaders(after, { secrets: HOOK_SECRET });
    await app.request(AFTER, { method: 'POST', headers, body: after });
    const claims = customAccessTokenBody(USER_ID, defaultClaims(USER_ID, { email }));
    await send(app, TOKEN, claims);
    await send(
      app,
      BEFORE,
      beforeUserCreatedBody({ email, raw_user_meta_data: { role: 'admin' } }),
    );
    await send(app, BEFORE, after, { secrets: OLD_HOOK_SECRET });

    expect(logger.entries.map((e) => [e.event, e.outcome])).toEqual([
      ['request', 'synced'],
      ['request', 'claims_added'],
      ['request', 'rejected'],
      ['request', 'bad_signature'],
    ]);
    expect(logger.entries[0]).toMatchObject({ user_id: USER_ID, status: 200 });
    const text = JSON.stringify(logger.entries);
    for (
      const leak of [
        email,
        'Private Person',
        HOOK_SECRET.slice(9),
        OLD_HOOK_SECRET.slice(9),
        headers['webhook-signature']!.slice(3),
        JSON.parse(claims).claims.session_id,
      ]
    ) {
      expect(text).not.toContain(leak);
    }
  });
});
