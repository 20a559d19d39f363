// Supabase Auth, as far as the demo needs it: GoTrue's statement sequences (gotrue.ts) and its
// hook calls (supabase-auth.ts), in the order and with the bodies and signatures GoTrue uses,
// sent over HTTP to the running function. Which hook fires on which path is
// dev/auth/sign-up-paths.ts.

import {
  afterUserCreatedBody,
  type AuthUserRow,
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  goTime,
  hookRequest,
  struct,
} from './supabase-auth.ts';
import type { LogEntry } from '../../shared/logger.ts';
import type { AuthUser } from './gotrue.ts';
import { SIGN_UP_PATHS, type SignUpPath } from './sign-up-paths.ts';
import type { DemoDb } from '../demo/db.ts';

export type HookName =
  | 'before-user-created'
  | 'after-user-created'
  | 'custom-access-token'
  | 'database webhook';

/** One call the demo made to the function, and what came back. */
export interface HookCall {
  hook: HookName;
  userId: string | null;
  status: number;
  /** What it meant: allowed, rejected, synced, user_role=…, … */
  result: string;
}

interface IdentityRow {
  identity_id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown>;
  provider: string;
  last_sign_in_at: Date | string | null;
  created_at: Date | string | null;
  updated_at: Date | string | null;
  email: string | null;
}

export interface SimulatedAuthOptions {
  db: DemoDb;
  /** http://127.0.0.1:<port>/functions/v1/user-sync */
  base: string;
  /** AUTH_HOOK_SECRET as Auth holds it: v1,whsec_… */
  hookSecret: string;
  webhookSecret: string;
  /** The function's log, to tell what each answer meant on its side (synced, deferred, …). */
  logs: readonly LogEntry[];
}

export class SimulatedAuth {
  readonly calls: HookCall[] = [];
  constructor(private readonly opts: SimulatedAuthOptions) {}

  private async send(path: string, body: string): Promise<Response> {
    const req = await hookRequest(`${this.opts.base}${path}`, body, {
      secrets: this.opts.hookSecret,
    });
    return await fetch(req);
  }

  /** `outcome (detail)` from the function's log line for this response. */
  private outcome(res: Response): string {
    const id = res.headers.get('x-request-id');
    const entry = this.opts.logs.find((e) => e.event === 'request' && e.request_id === id);
    if (!entry) return '';
    return ` [function: ${entry.outcome}${entry.detail ? `, ${entry.detail}` : ''}]`;
  }

  private record(call: HookCall): HookCall {
    this.calls.push(call);
    return call;
  }

  /**
   * A sign-up on `path`, with the calls Supabase Auth makes on it (dev/auth/sign-up-paths.ts):
   * before-user-created first (GoTrue's writes happen only if it allows them), then the first
   * token and after-user-created in the order Auth sends them. Null when refused.
   */
  async signUp(
    path: SignUpPath,
    unsaved: AuthUserRow,
    create: () => Promise<AuthUser>,
  ): Promise<AuthUser | null> {
    const calls = SIGN_UP_PATHS[path];
    if (calls.beforeUserCreated) {
      const before = await this.beforeUserCreated(unsaved);
      if (before.result !== 'allowed') return null;
    }
    const user = await create();
    if (calls.firstToken === 'in-transaction') await this.accessToken(user, calls.tokenMethod!);
    if (calls.afterUserCreated) await this.afterUserCreated(user);
    if (calls.firstToken === 'after-commit') await this.accessToken(user, calls.tokenMethod!);
    return user;
  }

  /**
   * before-user-created, with the unsaved user GoTrue builds (role '', zero times, no
   * identities). Returns the call; `result` is `allowed` or `rejected: <message>`.
   */
  async beforeUserCreated(user: AuthUserRow): Promise<HookCall> {
    const res = await this.send(
      '/hooks/before-user-created',
      beforeUserCreatedBody({
        ...user,
        email: user.email ?? undefined,
        created_at: null,
        updated_at: null,
        role: '',
      }),
    );
    const body = await res.json() as { error?: { http_code?: number; message?: string } };
    const result = res.status === 200 && !body.error?.message
      ? 'allowed'
      : `rejected (${body.error?.http_code ?? res.status}): ${body.error?.message ?? ''}`;
    return this.record({ hook: 'before-user-created', userId: null, status: res.status, result });
  }

  /** after-user-created, with the saved row and its identities (GoTrue reloads both). */
  async afterUserCreated(user: AuthUser): Promise<HookCall> {
    const identities = await this.opts.db.query<IdentityRow>(
      `select id as identity_id, provider_id, user_id, identity_data, provider, last_sign_in_at,
              created_at, updated_at, email
       from auth.identities where user_id = $1 order by created_at`,
      [user.id],
    );
    const res = await this.send(
      '/hooks/after-user-created',
      afterUserCreatedBody(user, identities.map(identityObject)),
    );
    await res.body?.cancel();
    return this.record({
      hook: 'after-user-created',
      userId: user.id,
      status: res.status,
      result: (res.status === 200 ? 'answered {}' : `HTTP ${res.status}`) + this.outcome(res),
    });
  }

  /** custom-access-token for a token minted for this user; `result` names the user_role. */
  async accessToken(user: AuthUser, method: string): Promise<HookCall & { userRole: unknown }> {
    const appMeta = user.raw_app_meta_data ?? {};
    const claims = defaultClaims(user.id, {
      email: user.email ?? '',
      phone: user.phone ?? '',
      app_metadata: appMeta,
      user_metadata: user.raw_user_meta_data ?? {},
      is_anonymous: user.is_anonymous,
      amr: [struct([['method', method], ['timestamp', Math.floor(Date.now() / 1000)]])],
    });
    const res = await this.send(
      '/hooks/custom-access-token',
      customAccessTokenBody(user.id, claims, method),
    );
    const body = await res.json() as { claims?: Record<string, unknown> };
    const userRole = body.claims?.['user_role'];
    const call = this.record({
      hook: 'custom-access-token',
      userId: user.id,
      status: res.status,
      result: userRole === undefined ? 'no user_role' : `user_role=${String(userRole)}`,
    });
    return { ...call, userRole };
  }

  /**
   * The auth.users database webhook (supabase_functions.http_request on pg_net): the whole row
   * as jsonb text, and the bearer token set in the trigger's headers.
   */
  async databaseWebhook(
    type: 'INSERT' | 'UPDATE' | 'DELETE',
    record: AuthUser | null,
    oldRecord: AuthUser | null,
  ): Promise<HookCall> {
    const res = await fetch(`${this.opts.base}/webhooks/auth-users`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${this.opts.webhookSecret}`,
        'user-agent': 'pg_net/0.19.5',
      },
      body: JSON.stringify({
        type,
        table: 'users',
        record,
        schema: 'auth',
        old_record: oldRecord,
      }),
    });
    const body = await res.json() as { action?: string };
    return this.record({
      hook: 'database webhook',
      userId: record?.id ?? oldRecord?.id ?? null,
      status: res.status,
      result: (body.action ?? `HTTP ${res.status}`) + this.outcome(res),
    });
  }
}

/** models.Identity as GoTrue serialises it (docs/reference/auth-hooks.md#user-object). */
function identityObject(row: IdentityRow) {
  return struct([
    ['identity_id', row.identity_id],
    ['id', row.provider_id],
    ['user_id', row.user_id],
    ['identity_data', row.identity_data],
    ['provider', row.provider],
    ['last_sign_in_at', goTime(row.last_sign_in_at)],
    ['created_at', goTime(row.created_at)],
    ['updated_at', goTime(row.updated_at)],
    ['email', row.email ?? undefined],
  ]);
}
