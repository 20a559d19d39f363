// The Auth hooks as Postgres functions (supabase/migrations/20261125000200_pg_function_hooks.sql),
// called exactly as Supabase Auth calls them (supabase/auth hookspgfunc.go;
// docs/reference/auth-hooks.md#postgres-function-hooks): logged in as supabase_auth_admin,
// inside a transaction, `set local statement_timeout TO '2000';`,
// then `select "public"."<fn>"($1);` with the event JSON as GoTrue marshals it (the bytes go in
// as they are, the answer comes back as the text Auth unmarshals), then the timeout reset.
// Their answers must be the HTTP hooks' (shared/routes/hooks.ts): parity tests send the same
// signed event to the edge function's app. On the server when DATABASE_URL is set, else PGlite.

import type postgres from 'postgres';
import type { Sql } from 'postgres';
import { describe, expect, it } from 'vitest';
import {
  type AppRow,
  insertAuthUser,
  openTransaction,
  pgError,
  postgresClient,
  SERVER,
  signUpUser,
  uid,
  useTestDb,
  whileEmailsBlocked,
  withoutTriggers as withoutTriggersOn,
} from '../helpers/db.ts';
import { useDirectApp } from '../helpers/app.ts';
import { userTokenClaims } from '../helpers/claims.ts';
import { type AuthDb, type AuthUser, type SqlClient } from '../helpers/gotrue.ts';
import * as gotrue from '../helpers/gotrue.ts';
import {
  beforeUserCreatedBody,
  claimsObject,
  goJson,
  hookRequest,
  metadataObject,
  struct,
} from '../helpers/supabase-auth.ts';
import { baseEnv, HOOK_SECRET, REQUIRED_CLAIMS } from '../function/fakes.ts';

type HookName = 'hook_custom_access_token' | 'hook_before_user_created';
type Json = Record<string, unknown>;

const BASE = 'http://localhost/user-sync';
const CHOICES = 'Choose one of: client, artist, producer.';

const db = useTestDb();
const direct = useDirectApp(db, baseEnv);
/** GoTrue's connection (db.close() ends it). */
let gotruePool: Sql | undefined;

// ---------------------------------------------------------------- calling as Auth does

/** One of GoTrue's transactions: its statements (SqlClient) and its hook calls. */
interface GoTrueTx extends SqlClient {
  /** hookspgfunc.go's three statements; returns the answer as the text Auth unmarshals. */
  hook(fn: HookName, event: string): Promise<string>;
}

const SET_TIMEOUT = "set local statement_timeout TO '2000';";
const RESET_TIMEOUT = 'set local statement_timeout TO default;';
const callHook = (fn: HookName) => `select "public"."${fn}"($1);`;

/** A transaction as GoTrue runs one, on a connection logged in as supabase_auth_admin. */
async function asGoTrue<T>(fn: (tx: GoTrueTx) => Promise<T>): Promise<T> {
  if (db.kind === 'server') {
    // pgx hands GoTrue's []byte to the jsonb parameter unchanged; postgres.js would turn a
    // string into a JSON string, so pass JSON text through as it is.
    const options = {
      max: 1,
      types: {
        goJson: {
          to: 3802,
          from: [3802],
          serialize: (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x)),
          parse: (x: string) => JSON.parse(x),
        },
      },
    };
    gotruePool ??= db.connect(
      'supabase_auth_admin',
      options as unknown as postgres.Options<Record<string, never>>,
    );
    return (await gotruePool.begin(async (tx) => {
      const client: GoTrueTx = {
        ...postgresClient(tx),
        async hook(name, event) {
          await tx.unsafe(SET_TIMEOUT);
          // raw(): the bytes the server sent, unparsed.
          const rows = await tx.unsafe(callHook(name), [event]).raw();
          await tx.unsafe(RESET_TIMEOUT);
          return String(rows[0]?.[0]);
        },
      };
      return await fn(client);
    })) as T;
  }
  const pglite = db.pglite;
  return await pglite.transaction(async (tx) => {
    // PGlite has one session: GoTrue's role and its role search_path, as the harness sets them.
    await tx.exec('set local role supabase_auth_admin; set local search_path = auth');
    return await fn({
      async query<R extends object>(text: string, params: unknown[] = []) {
        return (await tx.query<R>(text, params)).rows;
      },
      async hook(name, event) {
        await tx.query(SET_TIMEOUT);
        const res = await tx.query<[string]>(callHook(name), [event], {
          rowMode: 'array',
          parsers: { 3802: (text: string) => text },
        });
        await tx.query(RESET_TIMEOUT);
        return String(res.rows[0]?.[0]);
      },
    });
  });
}

/** GoTrue's statement sequences (tests/helpers/gotrue.ts) inside an open GoTrue transaction. */
const inTx = (tx: SqlClient): AuthDb => ({ asAuthAdmin: (fn) => fn(tx) });

/** A hook call in a transaction of its own, as for a sign-in or a token refresh. */
const hookOnce = (fn: HookName, event: string) => asGoTrue((tx) => tx.hook(fn, event));

/**
 * The custom access token event GoTrue builds for this user
 * (docs/reference/auth-hooks.md#custom-access-token).
 */
function tokenEvent(
  user: AuthUser,
  opts: {
    method?: string;
    aud?: string | string[];
    extra?: ReadonlyArray<readonly [string, unknown]>;
  } = {},
): string {
  const method = opts.method ?? (user.is_anonymous ? 'anonymous' : 'password');
  const claims = claimsObject(userTokenClaims(user, method, { aud: opts.aud ?? 'authenticated' }));
  return goJson(struct([
    ['metadata', metadataObject({ name: 'customize-access-token' })],
    ['user_id', user.id],
    ['claims', opts.extra ? struct([...claims.fields, ...opts.extra]) : claims],
    ['authentication_method', method],
  ]));
}

/** The same event, signed, to the edge function's route; its JSON answer. */
async function viaHttp(path: string, event: string): Promise<unknown> {
  const res = await direct.app.request(
    await hookRequest(`${BASE}/hooks/${path}`, event, { secrets: HOOK_SECRET }),
  );
  expect(res.status).toBe(200);
  return await res.json();
}

// ---------------------------------------------------------------- database helpers

/** The app row with its xmin: any write shows. */
type AppRowXmin = AppRow & { xmin: string };

const appRow = (id: string) => db.appRow<AppRowXmin>(id, '*, xmin::text as xmin');

async function failure(id: string) {
  const rows = await db.query<Json>(
    'select source, sqlstate, message, attempts from user_sync.sync_failures where user_id = $1',
    [id],
  );
  return rows[0];
}

/** Whether public.users holds exactly what the mapping wants for this user. */
async function inSync(id: string): Promise<boolean | undefined> {
  const rows = await db.query<{ in_sync: boolean }>(
    'select in_sync from user_sync.plan($1, $1)',
    [id],
  );
  return rows[0]?.in_sync;
}

/** Runs fn with every user trigger on auth.users off: only the hook can write public.users. */
const withoutTriggers = <T>(fn: () => Promise<T>) => withoutTriggersOn(db, fn);

/** Runs fn while public.users refuses rows with an @blocked.test email (a failing write). */
const whileBlocked = <T>(fn: () => Promise<T>) => whileEmailsBlocked(db, 'pg_hooks_blocked', fn);

const BLOCKED = {
  sqlstate: '23514',
  message: 'new row for relation "users" violates check constraint "pg_hooks_blocked"',
};

// ---------------------------------------------------------------- custom access token

describe('hook_custom_access_token, called as Supabase Auth calls it', () => {
  it('answers {"claims": …} with every input claim unchanged plus user_role', async () => {
    const user = await signUpUser(db, 'claims', { data: { role: 'artist' } });
    const event = tokenEvent(user);
    const out = JSON.parse(await hookOnce('hook_custom_access_token', event));
    expect(out).toStrictEqual({ claims: { ...JSON.parse(event).claims, user_role: 'artist' } });
    for (const claim of REQUIRED_CLAIMS) expect(out.claims).toHaveProperty(claim);
  });

  it('keeps unknown claims, nested values, aud as an array and numbers exactly as sent', async () => {
    const user = await signUpUser(db, 'extra');
    const nested = {
      list: [1, -2.5, 'three', null, true, { deep: [[], {}] }],
      text: 'quote " backslash \\ <tag> & \u2028 é 𝄞',
      empty: '',
    };
    const event = tokenEvent(user, {
      aud: ['authenticated', 'other'],
      method: 'oauth_provider/authorization_code',
      extra: [['client_id', 'abc'], ['scope', 'openid email'], ['future_claim', nested]],
    });
    // The answer is exactly the input claims plus user_role, to the byte of jsonb's output:
    // numbers GoTrue never sends, such as 1.0 and 2^64, would survive too (second event).
    const raw = await hookOnce('hook_custom_access_token', event);
    const out = JSON.parse(raw);
    expect(out).toStrictEqual({
      claims: { ...JSON.parse(event).claims, user_role: 'client' },
    });
    const exotic = event.replace(
      '"client_id":"abc"',
      '"client_id":"abc","n":[1.0,18446744073709551616,1e400]',
    );
    const exoticRaw = await hookOnce('hook_custom_access_token', exotic);
    for (const [input, answer] of [[event, raw], [exotic, exoticRaw]] as const) {
      const [check] = await db.query<{ exact: string }>(
        `select jsonb_build_object('claims',
           ($1::text::jsonb -> 'claims') || '{"user_role": "client"}')::text as exact`,
        [input],
      );
      expect(answer).toBe(check!.exact);
    }
    expect(exoticRaw).toContain('"n": [1.0, 18446744073709551616, 1');
  });

  it('answers the same as the HTTP hook for a committed user', async () => {
    const user = await signUpUser(db, 'parity', { data: { role: 'producer' }, autoconfirm: false });
    const event = tokenEvent(user);
    const sql = JSON.parse(await hookOnce('hook_custom_access_token', event));
    expect(sql.claims.user_role).toBe('producer');
    expect(sql).toStrictEqual(await viaHttp('custom-access-token', event));
  });

  const mail = (tag: string) => `${tag}-${uid()}@example.com`;
  const PATHS: Array<[string, () => Promise<AuthUser>, string]> = [
    [
      'email sign-up, confirmation on, artist chosen',
      () => signUpUser(db, 'e1', { autoconfirm: false, data: { role: 'artist' } }),
      'artist',
    ],
    ['email sign-up, autoconfirm', () => signUpUser(db, 'e2'), 'client'],
    [
      'email sign-up asking for admin in user_metadata',
      () => signUpUser(db, 'e3', { data: { role: 'admin' } }),
      'client',
    ],
    ['phone sign-up, producer chosen', () =>
      gotrue.signUpPhone(db, {
        phone: `+46 70 ${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`,
        autoconfirm: true,
        data: { role: 'producer' },
      }), 'producer'],
    ['anonymous sign-up', () => gotrue.signUpAnonymous(db), 'client'],
    [
      'Google OAuth',
      () =>
        gotrue.signInOAuth(db, {
          provider: 'google',
          claims: gotrue.googleClaims({ email: mail('g') }),
        }),
      'client',
    ],
    [
      'GitHub OAuth',
      () =>
        gotrue.signInOAuth(db, {
          provider: 'github',
          claims: gotrue.githubClaims({ email: mail('gh') }),
        }),
      'client',
    ],
    [
      'invite, producer chosen',
      () => gotrue.invite(db, { email: mail('inv'), data: { role: 'producer' } }),
      'producer',
    ],
    [
      'admin createUser with app_metadata.role admin',
      () =>
        gotrue.adminCreateUser(db, {
          email: mail('adm'),
          app_metadata: { role: 'admin' },
          email_confirm: true,
        }),
      'admin',
    ],
    [
      'admin createUser without app_metadata',
      () => gotrue.adminCreateUser(db, { email: mail('plain') }),
      'client',
    ],
    [
      'a plain SQL insert into auth.users',
      () => insertAuthUser(db, { email: mail('sql') }),
      'client',
    ],
  ];

  for (const [path, signUp, role] of PATHS) {
    it(`user_role ${role} after: ${path} (with the trigger, and by the hook alone)`, async () => {
      const withTrigger = await signUp();
      const before = await appRow(withTrigger.id);
      const first = JSON.parse(await hookOnce('hook_custom_access_token', tokenEvent(withTrigger)));
      expect(first.claims.user_role).toBe(role);
      // The trigger had synced the row: the hook read it and wrote nothing.
      expect(await appRow(withTrigger.id)).toEqual(before);

      const alone = await withoutTriggers(signUp);
      expect(await appRow(alone.id)).toBeUndefined();
      const out = JSON.parse(await hookOnce('hook_custom_access_token', tokenEvent(alone)));
      expect(out.claims.user_role).toBe(role);
      expect(await appRow(alone.id)).toMatchObject({ id: alone.id, role });
      expect(await inSync(alone.id)).toBe(true);
    });
  }

  it('the first token after an autoconfirm sign-up has user_role: same transaction, before commit', async () => {
    for (const trigger of [true, false]) {
      const email = `first-${uid()}@example.com`;
      const signUpAndToken = () =>
        asGoTrue(async (tx) => {
          // /signup with autoconfirm: the user's statements and the token, one transaction.
          const user = await gotrue.signUpEmail(inTx(tx), {
            email,
            autoconfirm: true,
            data: { role: 'producer', full_name: 'First Token' },
          });
          const out = JSON.parse(await tx.hook('hook_custom_access_token', tokenEvent(user)));
          if (db.kind === 'server') {
            // Nobody outside Auth's transaction sees the user yet: the HTTP hook cannot, so it
            // derives user_role from the claims by the creation rule (user_sync.token_role).
            expect(await db.query('select 1 from auth.users where id = $1', [user.id])).toEqual([]);
            const http = (await viaHttp('custom-access-token', tokenEvent(user))) as Json;
            expect(http.claims).toHaveProperty('user_role', 'producer');
          }
          return { user, out };
        });
      const { user, out } = trigger
        ? await signUpAndToken()
        : await withoutTriggers(signUpAndToken);
      expect({ trigger, user_role: out.claims.user_role }).toEqual({
        trigger,
        user_role: 'producer',
      });
      expect(await appRow(user.id)).toMatchObject({ full_name: 'First Token', role: 'producer' });
      expect(await inSync(user.id)).toBe(true);
    }
  });

  it("rolls back with Auth's transaction", async () => {
    const id = await withoutTriggers(async () => {
      let created = '';
      await expect(asGoTrue(async (tx) => {
        const user = await signUpUser(inTx(tx), 'rolled');
        created = user.id;
        const out = JSON.parse(await tx.hook('hook_custom_access_token', tokenEvent(user)));
        expect(out.claims.user_role).toBe('client');
        throw new Error('GoTrue failed later in the request');
      })).rejects.toThrow('GoTrue failed later');
      return created;
    });
    expect(await db.query('select 1 from auth.users where id = $1', [id])).toEqual([]);
    expect(await appRow(id)).toBeUndefined();
  });

  it('an in-sync user (every refresh): nothing written, nothing locked, nothing recorded', async () => {
    const user = await signUpUser(db, 'refresh', { data: { role: 'artist' } });
    const before = await appRow(user.id);
    for (let i = 0; i < 3; i++) {
      const out = JSON.parse(
        await hookOnce('hook_custom_access_token', tokenEvent(user, { method: 'token_refresh' })),
      );
      expect(out.claims.user_role).toBe('artist');
    }
    expect(await appRow(user.id)).toEqual(before);
    expect(await failure(user.id)).toBeUndefined();
  });

  it('repairs a stale, missing or promoted row in the token transaction, with the one mapping', async () => {
    const user = await signUpUser(db, 'stale', {
      data: { role: 'artist', full_name: 'Stale Person' },
    });
    const synced = await appRow(user.id);
    const same = ({ xmin: _x, updated_at: _u, ...rest }: AppRowXmin) => rest;

    await db.query(`update public.users set email = 'drifted@example.com' where id = $1`, [
      user.id,
    ]);
    let out = JSON.parse(await hookOnce('hook_custom_access_token', tokenEvent(user)));
    expect(out.claims.user_role).toBe('artist');
    expect(same((await appRow(user.id))!)).toEqual(same(synced!));

    await db.query('delete from public.users where id = $1', [user.id]);
    out = JSON.parse(await hookOnce('hook_custom_access_token', tokenEvent(user)));
    expect(out.claims.user_role).toBe('artist');
    expect(same((await appRow(user.id))!)).toEqual(same(synced!));

    // An admin grants a role while the trigger is off (or failing): the next token has it.
    const promoted = await withoutTriggers(() =>
      gotrue.adminUpdateAppMetadata(db, user.id, { role: 'admin' })
    );
    out = JSON.parse(await hookOnce('hook_custom_access_token', tokenEvent(promoted)));
    expect(out.claims.user_role).toBe('admin');
    expect(await appRow(user.id)).toMatchObject({ role: 'admin' });
  });

  it('a user the database cannot see: user_role from its claims by the creation rule, in both hooks; nothing written', async () => {
    const ghost = { ...(await gotrue.signUpAnonymous(db)), id: crypto.randomUUID() };
    const event = tokenEvent(ghost);
    const out = JSON.parse(await hookOnce('hook_custom_access_token', event));
    // Neither hook can tell a user nobody can see yet (the first token, inside the sign-up
    // transaction) from one that does not exist: both apply the creation rule to the claims.
    expect(out).toStrictEqual({ claims: { ...JSON.parse(event).claims, user_role: 'client' } });
    expect(await viaHttp('custom-access-token', event)).toStrictEqual(out);
    expect(await appRow(ghost.id)).toBeUndefined();
    expect(await failure(ghost.id)).toBeUndefined();
  });

  it('an event without a claims object: an error object, never {"claims": null}', async () => {
    for (const claims of [null, [], 'claims']) {
      const event = JSON.stringify({ user_id: crypto.randomUUID(), claims });
      expect(JSON.parse(await hookOnce('hook_custom_access_token', event))).toStrictEqual({
        error: {
          http_code: 500,
          message: 'Invalid payload sent to hook: the event has no claims object.',
        },
      });
    }
  });

  it('a user_id that is not a UUID: the claims unchanged, nothing recorded', async () => {
    const user = await gotrue.signUpAnonymous(db);
    const event = tokenEvent(user).replace(`"user_id":"${user.id}"`, '"user_id":"not-a-uuid"');
    const out = JSON.parse(await hookOnce('hook_custom_access_token', event));
    expect(out).toStrictEqual({ claims: JSON.parse(event).claims });
  });
});

describe('hook_custom_access_token when the sync fails', () => {
  it('a failing write: user_role by the token rule all the same, the failure recorded, Auth carries on', async () => {
    await whileBlocked(async () => {
      // The trigger's write fails too (and is recorded): the user has no row.
      const user = await gotrue.signUpEmail(db, {
        email: `fails-${uid()}@blocked.test`,
        autoconfirm: true,
      });
      expect(await appRow(user.id)).toBeUndefined();
      const recorded = await failure(user.id);
      expect(recorded).toMatchObject({ source: 'trigger', ...BLOCKED });
      const event = tokenEvent(user);
      const out = await asGoTrue(async (tx) => {
        const answer = JSON.parse(await tx.hook('hook_custom_access_token', event));
        // Auth's transaction is intact: its next statements run and it commits.
        expect(await tx.query('select id from users where id = $1', [user.id])).toEqual([
          { id: user.id },
        ]);
        return answer;
      });
      // No row, no app_metadata role: the default.
      expect(out).toStrictEqual({ claims: { ...JSON.parse(event).claims, user_role: 'client' } });
      expect(await failure(user.id)).toEqual({
        source: 'hook:custom-access-token',
        attempts: Number(recorded!.attempts) + 1,
        ...BLOCKED,
      });
      expect(out).toStrictEqual(await viaHttp('custom-access-token', event));
    });
  });

  it('a row whose update fails keeps the role it has, as the HTTP hook answers', async () => {
    const user = await signUpUser(db, 'keeps', { data: { role: 'artist' } });
    await whileBlocked(async () => {
      const moved = await gotrue.changeEmail(db, user.id, `moved-${uid()}@blocked.test`);
      const event = tokenEvent(moved);
      const out = JSON.parse(await hookOnce('hook_custom_access_token', event));
      expect(out).toStrictEqual({ claims: { ...JSON.parse(event).claims, user_role: 'artist' } });
      expect(await failure(user.id)).toMatchObject({
        source: 'hook:custom-access-token',
        ...BLOCKED,
      });
      expect(out).toStrictEqual(await viaHttp('custom-access-token', event));
    });
  });

  it.skipIf(!SERVER)(
    'a sync whose app row another session holds: deferred at once, user_role by the token rule, nothing recorded (server)',
    async () => {
      const user = await signUpUser(db, 'locked');
      // Stale, so the hook must write; and another session holds the row (a profile edit
      // left open). The sync skips what it cannot lock at once rather than hold the token.
      await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [
        user.id,
      ]);
      const locker = await openTransaction(
        db,
        (tx) => tx.query('select 1 from public.users where id = $1 for update', [user.id]),
      );
      try {
        const event = tokenEvent(user);
        const started = performance.now();
        const out = await asGoTrue(async (tx) => {
          const answer = JSON.parse(await tx.hook('hook_custom_access_token', event));
          expect(await tx.query('select 1 as ok')).toEqual([{ ok: 1 }]);
          return answer;
        });
        const elapsed = performance.now() - started;
        expect(out).toStrictEqual({
          claims: { ...JSON.parse(event).claims, user_role: 'client' },
        });
        // Well inside the 2 s statement timeout: it did not wait for the lock.
        expect(elapsed).toBeLessThan(1500);
        expect(await failure(user.id)).toBeUndefined();
      } finally {
        await locker.commit();
      }
      // Once the row is free, the next token repairs it.
      const after = await asGoTrue(async (tx) =>
        JSON.parse(await tx.hook('hook_custom_access_token', tokenEvent(user)))
      );
      expect(after.claims.user_role).toBe('client');
      expect(
        (await db.query<{ email: string }>('select email from public.users where id = $1', [
          user.id,
        ]))[0]?.email,
      ).toBe(user.email);
    },
  );
});

// ---------------------------------------------------------------- before user created

/**
 * A before-user-created event for an email sign-up asking for this metadata
 * (docs/reference/auth-hooks.md#before-user-created).
 */
const signUpEvent = (userMetadata: Json) =>
  beforeUserCreatedBody({
    id: crypto.randomUUID(),
    email: `new-${uid()}@example.com`,
    raw_user_meta_data: userMetadata,
  });

const ALLOWED: Json[] = [
  {},
  { role: 'client' },
  { role: 'artist' },
  { role: 'producer' },
  { role: null },
  { role: '' },
  { full_name: 'A <b>' },
];

const REJECTED: Array<[Json, string]> = [
  [{ role: 'admin' }, `The role "admin" cannot be chosen at sign-up. ${CHOICES}`],
  [{ role: 'superuser' }, `The role "superuser" cannot be chosen at sign-up. ${CHOICES}`],
  [{ role: 'Admin' }, `The role "Admin" cannot be chosen at sign-up. ${CHOICES}`],
  [{ role: 'client ' }, `The role "client " cannot be chosen at sign-up. ${CHOICES}`],
  [
    { role: 'x'.repeat(60) },
    `The role "${'x'.repeat(40)}" cannot be chosen at sign-up. ${CHOICES}`,
  ],
  [
    { role: 'say "hi" <&> \\ é' },
    `The role "say "hi" <&> \\ é" cannot be chosen at sign-up. ${CHOICES}`,
  ],
  [{ role: 42 }, `The requested role is not valid. ${CHOICES}`],
  [{ role: true }, `The requested role is not valid. ${CHOICES}`],
  [{ role: ['admin'] }, `The requested role is not valid. ${CHOICES}`],
  [{ role: { name: 'admin' } }, `The requested role is not valid. ${CHOICES}`],
];

describe('hook_before_user_created, called as Supabase Auth calls it', () => {
  it('allows a sign-up without a role or with a self-assignable one: {} byte for byte', async () => {
    for (const meta of ALLOWED) {
      expect({ meta, answer: await hookOnce('hook_before_user_created', signUpEvent(meta)) })
        .toEqual({ meta, answer: '{}' });
    }
  });

  // The error object: docs/reference/auth-hooks.md#error-object.
  it('refuses admin with the Auth error object, byte for byte', async () => {
    const raw = await hookOnce('hook_before_user_created', signUpEvent({ role: 'admin' }));
    // jsonb's text form of {"error":{"http_code":400,"message":…}}; Auth reads error.message
    // (non-empty) and answers the sign-up with http_code.
    expect(raw).toBe(
      '{"error": {"message": "The role \\"admin\\" cannot be chosen at sign-up. ' +
        `${CHOICES}", "http_code": 400}}`,
    );
  });

  it("refuses every other role it may not choose, with the HTTP hook's sentences", async () => {
    for (const [meta, message] of REJECTED) {
      const answer = JSON.parse(await hookOnce('hook_before_user_created', signUpEvent(meta)));
      expect({ meta, answer }).toStrictEqual({
        meta,
        answer: { error: { http_code: 400, message } },
      });
    }
  });

  it('answers exactly as the HTTP hook for every metadata case', async () => {
    for (const meta of [...ALLOWED, ...REJECTED.map(([m]) => m)]) {
      const event = signUpEvent(meta);
      const sql = JSON.parse(await hookOnce('hook_before_user_created', event));
      expect({ meta, sql }).toStrictEqual({
        meta,
        sql: await viaHttp('before-user-created', event),
      });
    }
  });

  it('allows the events of the other sign-up paths: nil metadata, anonymous, phone, OAuth', async () => {
    const nilMetadata = JSON.stringify({
      metadata: { uuid: crypto.randomUUID(), time: '2025-04-29T13:13:24.755552-07:00' },
      user: {
        id: crypto.randomUUID(),
        aud: 'authenticated',
        role: '',
        email: '',
        phone: '',
        app_metadata: null,
        user_metadata: null,
        identities: null,
        created_at: '0001-01-01T00:00:00Z',
        updated_at: '0001-01-01T00:00:00Z',
        is_anonymous: true,
      },
    });
    const events = [
      nilMetadata,
      beforeUserCreatedBody({ email: '', raw_app_meta_data: {}, is_anonymous: true }),
      beforeUserCreatedBody({
        email: '',
        phone: '46705550123',
        raw_app_meta_data: { provider: 'phone', providers: ['phone'] },
        raw_user_meta_data: { role: 'artist' },
      }),
      beforeUserCreatedBody({
        email: `oauth-${uid()}@example.com`,
        raw_app_meta_data: { provider: 'google', providers: ['google'] },
        raw_user_meta_data: gotrue.googleClaims({ email: `oauth-${uid()}@example.com` }),
      }),
    ];
    for (const event of events) {
      expect(await hookOnce('hook_before_user_created', event)).toBe('{}');
      expect(await viaHttp('before-user-created', event)).toStrictEqual({});
    }
  });

  it('refuses an event without a user object', async () => {
    for (const event of ['{}', '{"user":null}', '{"user":"x"}']) {
      expect(JSON.parse(await hookOnce('hook_before_user_created', event))).toStrictEqual({
        error: {
          http_code: 500,
          message: 'Invalid payload sent to hook: the event has no user object.',
        },
      });
    }
  });

  it('reads the roles from user_sync.roles: a project adds or closes one with data', async () => {
    await db.exec(`insert into user_sync.roles (role, self_assignable) values
                     ('designer', true), ('staff', false);
                   update user_sync.roles set self_assignable = false where role = 'artist';`);
    try {
      expect(await hookOnce('hook_before_user_created', signUpEvent({ role: 'designer' })))
        .toBe('{}');
      for (const role of ['staff', 'artist']) {
        expect(
          JSON.parse(await hookOnce('hook_before_user_created', signUpEvent({ role }))),
        ).toStrictEqual({
          error: {
            http_code: 400,
            message: `The role "${role}" cannot be chosen at sign-up. ` +
              'Choose one of: client, designer, producer.',
          },
        });
      }
    } finally {
      await db.exec(`delete from user_sync.roles where role in ('designer', 'staff');
                     update user_sync.roles set self_assignable = true where role = 'artist';`);
    }
  });

  it('writes nothing', async () => {
    const counts = () =>
      db.query(`select (select count(*) from auth.users)::int as auth,
                       (select count(*) from public.users)::int as app,
                       (select count(*) from user_sync.sync_failures)::int as failures`);
    const before = await counts();
    for (const meta of [...ALLOWED, ...REJECTED.map(([m]) => m)]) {
      await hookOnce('hook_before_user_created', signUpEvent(meta));
    }
    expect(await counts()).toEqual(before);
  });
});

// ---------------------------------------------------------------- privileges

describe('who may call the hook functions', () => {
  // service_role may ask the before-user-created rule (the HTTP hook does), not mint claims.
  const REFUSED = {
    anon: ['hook_custom_access_token', 'hook_before_user_created'],
    authenticated: ['hook_custom_access_token', 'hook_before_user_created'],
    service_role: ['hook_custom_access_token'],
  } as const;
  for (
    const [role, refused] of Object.entries(REFUSED) as [keyof typeof REFUSED, readonly string[]][]
  ) {
    it(`${role} cannot execute ${refused.join(' or ')}`, async () => {
      const user = await gotrue.signUpAnonymous(db);
      for (const fn of refused) {
        const error = await pgError(
          db.as(role, (tx) =>
            tx.query(`select public.${fn}($1::text::jsonb)`, [
              tokenEvent(user),
            ])),
        );
        expect({ fn, ...error }).toEqual({
          fn,
          code: '42501',
          message: `permission denied for function ${fn}`,
        });
      }
    });
  }

  it('only supabase_auth_admin (and service_role the before-user-created rule) may; security definer, search_path pinned to pg_catalog, pg_temp', async () => {
    const rows = await db.query<Json>(
      `select p.proname as fn, p.prosecdef as definer, p.proconfig as config,
              array(select case when a.grantee = 0 then 'PUBLIC' else a.grantee::regrole::text end
                      from aclexplode(p.proacl) a where a.privilege_type = 'EXECUTE'
                      order by 1) as executors,
              p.proowner::regrole::text as owner
         from pg_proc p
        where p.oid in ('public.hook_custom_access_token(jsonb)'::regprocedure,
                        'public.hook_before_user_created(jsonb)'::regprocedure)
        order by 1`,
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toEqual({
        fn: row.fn,
        definer: true,
        config: ['search_path=pg_catalog, pg_temp'],
        executors: [
          row.owner as string,
          'supabase_auth_admin',
          ...(row.fn === 'hook_before_user_created' ? ['service_role'] : []),
        ].sort(),
        owner: row.owner,
      });
    }
    const [usage] = await db.query(
      `select has_schema_privilege('supabase_auth_admin', 'public', 'USAGE') as public,
              has_schema_privilege('supabase_auth_admin', 'user_sync', 'USAGE') as user_sync`,
    );
    expect(usage).toEqual({ public: true, user_sync: false });
  });

  it("GoTrue's role finds the hooks in public but can read or call nothing else of ours", async () => {
    const user = await gotrue.signUpAnonymous(db);
    const tries: Array<[string, string]> = [
      ['select * from public.users', 'permission denied for table users'],
      ['select * from user_sync.roles', 'permission denied for schema user_sync'],
      [`select public.sync_user('${user.id}')`, 'permission denied for function sync_user'],
      ['select public.resync_users()', 'permission denied for function resync_users'],
      ['select public.sync_my_user()', 'permission denied for function sync_my_user'],
    ];
    for (const [sql, message] of tries) {
      const error = await pgError(asGoTrue((tx) => tx.query(sql)));
      expect({ sql, ...error }).toEqual({ sql, code: '42501', message });
    }
  });
});
