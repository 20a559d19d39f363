// The traffic of a load run: GoTrue sessions that sign users up in GoTrue's statement order,
// and the signed hooks and pg_net webhooks Supabase would send for them, over real HTTP.

import postgres, { type Sql } from 'postgres';
import { isConnectionLoss, unlessConnectionLost } from '../../shared/gateways/direct.ts';
import { SIGN_UP_PATHS, type SignUpPath } from '../../dev/auth/sign-up-paths.ts';
import * as gotrue from '../helpers/gotrue.ts';
import type { AuthDb, AuthUser, SqlClient } from '../helpers/gotrue.ts';
import {
  afterUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  hookHeaders,
} from '../helpers/supabase-auth.ts';

type Json = Record<string, unknown>;

/**
 * A postgres.js pool for the test's own sessions, hardened the way shared/gateways/direct.ts
 * hardens the function's (postgres.js 3.4.9 and lost connections): no array-type lookup at
 * connect (its rejection goes unhandled when the connection drops meanwhile), and a fresh pool
 * after a lost connection.
 */
export function resilientPool(url: string, options: postgres.Options<Record<string, never>>) {
  const open = () => postgres(url, { onnotice: () => {}, fetch_types: false, ...options });
  let sql = open();
  const retired: Sql[] = [];
  return {
    async use<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
      const pool = sql;
      try {
        return await fn(pool);
      } catch (error) {
        if (isConnectionError(error) && pool === sql) {
          sql = open();
          retired.push(pool);
          void pool.end({ timeout: 1 }).catch(() => {});
        }
        throw error;
      }
    },
    async end(): Promise<void> {
      await Promise.all([sql, ...retired].map((p) => p.end({ timeout: 5 }).catch(() => {})));
    },
  };
}
export type ResilientPool = ReturnType<typeof resilientPool>;

/** A GoTrue connection: every API call is one transaction; `beforeCommit` runs inside it. */
export function gotrueDb(
  pool: ResilientPool,
  beforeCommit?: (user: AuthUser) => Promise<void>,
): AuthDb {
  return {
    asAuthAdmin: <T>(fn: (tx: SqlClient) => Promise<T>) =>
      pool.use((sql) =>
        sql.begin(async (tx) => {
          const client: SqlClient = {
            query: async <R extends object>(text: string, params: unknown[] = []) =>
              // deno-lint-ignore no-explicit-any -- postgres.js types parameters per registered type
              [...(await unlessConnectionLost(tx.unsafe(text, params as any[])))] as unknown as R[],
          };
          const result = await fn(client);
          if (beforeCommit) await beforeCommit(result as AuthUser);
          return result;
        }) as Promise<T>
      ),
  };
}

/** The sign-up paths, in a fixed rotation, and the app role each must end with. */
export const SIGNUP_KINDS = [
  'email',
  'email',
  'email',
  'email-autoconfirm',
  'email-asks-artist',
  'email-asks-admin',
  'phone',
  'anonymous',
  'google',
  'github',
  'invite',
  'admin-create',
] as const;
export type SignUpKind = (typeof SIGNUP_KINDS)[number];

export function expectedRole(kind: SignUpKind): string {
  if (kind === 'admin-create') return 'admin';
  if (kind === 'email-asks-artist') return 'artist';
  return 'client'; // email-asks-admin included: admin is not self-assignable
}

/** The Auth path each kind takes (dev/auth/sign-up-paths.ts says what Auth sends on it). */
const PATH_OF: Record<SignUpKind, SignUpPath> = {
  email: 'email',
  'email-autoconfirm': 'email-autoconfirm',
  'email-asks-artist': 'email-autoconfirm',
  'email-asks-admin': 'email-autoconfirm',
  phone: 'phone-autoconfirm',
  anonymous: 'anonymous',
  google: 'oauth',
  github: 'oauth',
  invite: 'invite',
  'admin-create': 'admin-create',
};

/**
 * Which hook calls Supabase Auth makes for a sign-up of this kind; pg_net's webhook follows
 * every INSERT, after its commit.
 */
export function authEvents(kind: SignUpKind) {
  const calls = SIGN_UP_PATHS[PATH_OF[kind]];
  return {
    afterUserCreated: calls.afterUserCreated,
    tokenInTransaction: calls.firstToken === 'in-transaction',
    tokenAfterCommit: calls.firstToken === 'after-commit',
  };
}

/** One sign-up of user number `n`; `key` (in user_metadata) finds it again after a lost commit. */
export function signUp(db: AuthDb, kind: SignUpKind, n: number, key: string): Promise<AuthUser> {
  const email = `load${n}@example.com`;
  const data: Json = { load_key: key, full_name: `Load User ${n}` };
  switch (kind) {
    case 'email':
      return gotrue.signUpEmail(db, { email, data, autoconfirm: false });
    case 'email-autoconfirm':
      return gotrue.signUpEmail(db, { email, data, autoconfirm: true });
    case 'email-asks-artist':
      return gotrue.signUpEmail(db, {
        email,
        data: { ...data, role: 'artist' },
        autoconfirm: true,
      });
    case 'email-asks-admin':
      return gotrue.signUpEmail(db, { email, data: { ...data, role: 'admin' }, autoconfirm: true });
    case 'phone':
      return gotrue.signUpPhone(db, {
        phone: `+1555${String(n).padStart(7, '0')}`,
        data,
        autoconfirm: true,
      });
    case 'anonymous':
      return gotrue.signUpAnonymous(db, { data });
    case 'google':
      return gotrue.signInOAuth(db, {
        provider: 'google',
        claims: { ...gotrue.googleClaims({ email, sub: `g${n}-${key}` }), load_key: key },
      });
    case 'github':
      return gotrue.signInOAuth(db, {
        provider: 'github',
        claims: { ...gotrue.githubClaims({ email, id: `h${n}-${key}` }), load_key: key },
      });
    case 'invite':
      return gotrue.invite(db, { email, data });
    case 'admin-create':
      return gotrue.adminCreateUser(db, {
        email,
        password: 'password123',
        email_confirm: true,
        user_metadata: data,
        app_metadata: { role: 'admin' },
      });
  }
}

/** Errors after which a client cannot know whether its transaction committed. */
export const isConnectionError = isConnectionLoss;

export type EventKind =
  | 'after-user-created'
  | 'custom-access-token'
  | 'webhook INSERT'
  | 'webhook UPDATE'
  | 'resync'
  | 'probe';

export interface Delivery {
  kind: EventKind;
  status: number;
  ms: number;
  /** Milliseconds since the run started. */
  at: number;
  body: Json | null;
}

/** Sends what Supabase sends, and keeps every answer. */
export class Sender {
  readonly deliveries: Delivery[] = [];
  constructor(
    readonly base: string,
    readonly secrets: { hook: string; webhook: string; admin: string },
    readonly t0: number,
  ) {}

  private async post(kind: EventKind, path: string, headers: Json, body: string) {
    const started = performance.now();
    let status = 0;
    let parsed: Json | null = null;
    try {
      const res = await fetch(`${this.base}${path}`, {
        method: 'POST',
        headers: headers as Record<string, string>,
        body,
      });
      status = res.status;
      const text = await res.text();
      try {
        parsed = JSON.parse(text) as Json;
      } catch {
        parsed = null;
      }
    } catch {
      status = 0; // no answer at all: a dropped connection
    }
    const delivery = {
      kind,
      status,
      ms: performance.now() - started,
      at: started - this.t0,
      body: parsed,
    };
    this.deliveries.push(delivery);
    return delivery;
  }

  /** One attempt as GoTrue makes it: the same body, a new webhook-id, timestamp, signature. */
  private async hook(kind: EventKind, path: string, body: string) {
    return await this.post(
      kind,
      path,
      await hookHeaders(body, { secrets: this.secrets.hook }),
      body,
    );
  }

  /** `uuid` is metadata.uuid: the same for GoTrue's retries of one invocation. */
  afterUserCreated(user: AuthUser, uuid: string) {
    return this.hook(
      'after-user-created',
      '/hooks/after-user-created',
      afterUserCreatedBody(user, [], { uuid }),
    );
  }

  customAccessToken(user: AuthUser, uuid: string) {
    const claims = defaultClaims(user.id, {
      email: user.email ?? '',
      phone: user.phone ?? '',
      is_anonymous: user.is_anonymous,
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
    });
    return this.hook(
      'custom-access-token',
      '/hooks/custom-access-token',
      customAccessTokenBody(user.id, claims, 'password', { uuid }),
    );
  }

  /**
   * pg_net's payload for an auth.users row change (docs/reference/database-webhooks.md#payload):
   * the whole row, old and new.
   */
  webhook(type: 'INSERT' | 'UPDATE', record: AuthUser, old: AuthUser | null) {
    const body = JSON.stringify({
      type,
      table: 'users',
      schema: 'auth',
      record,
      old_record: old,
    });
    return this.post(`webhook ${type}`, '/webhooks/auth-users', {
      'content-type': 'application/json',
      authorization: `Bearer ${this.secrets.webhook}`,
    }, body);
  }

  resync(body: Json, kind: EventKind = 'resync') {
    return this.post(kind, '/resync', {
      'content-type': 'application/json',
      authorization: `Bearer ${this.secrets.admin}`,
    }, JSON.stringify(body));
  }
}

/**
 * Runs at most `n` tasks at once. `later` starts a task after a delay without holding a slot
 * meanwhile; `idle()` resolves when every task given so far, late ones included, has ended.
 */
export function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  const all = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    all.add(p);
    void p.catch(() => {}).finally(() => all.delete(p));
    return p;
  };
  const run = async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
  return {
    run: <T>(task: () => Promise<T>): Promise<T> => track(run(task)),
    later: <T>(ms: number, task: () => Promise<T>): Promise<T> =>
      track(sleep(ms).then(() => run(task))),
    async idle(): Promise<void> {
      while (all.size > 0) await Promise.allSettled([...all]);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
