import { Hono } from 'hono';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppDeps, AppEnv } from '../context.ts';
import { ApiError } from '../errors.ts';
import { GatewayError } from '../gateway.ts';
import { rpcWithRetry } from '../retry.ts';
import {
  AFTER_USER_CREATED_RETRY,
  BEFORE_USER_CREATED_RETRY,
  CUSTOM_ACCESS_TOKEN_RETRY,
} from '../timeouts.ts';
import {
  afterUserCreatedSchema,
  beforeUserCreatedSchema,
  customAccessTokenSchema,
  describeIssues,
} from '../schemas.ts';
import { createHookVerifier, SignatureError } from '../signature.ts';
import type { z } from 'zod';

/** What public.hook_before_user_created returns: {} to allow, or Auth's error object. */
interface BeforeUserCreatedAnswer {
  error?: { http_code: number; message: string };
}

/** What public.sync_user returns (docs/sql-api.md). */
export interface SyncResult {
  user_id: string;
  action: 'inserted' | 'updated' | 'unchanged' | 'deleted' | 'not_found' | 'deferred' | 'failed';
  /** The role the row holds after the sync (null: no row). */
  role: string | null;
  /**
   * The role an access token may carry (user_sync.token_role): app_metadata's known role, else
   * the row's self-assignable role, else the default; for a user the database cannot see yet,
   * the creation rule over the claims sent in p_claims.
   */
  user_role?: string | null;
  sqlstate?: string;
}

/**
 * What user_sync.token_role reads of a token's claims: the roles app_metadata and user_metadata
 * name, when they are strings (nothing else can name a role). Only that is sent, so a user's
 * own user_metadata, which can be large or nested thousands deep, never reaches the database.
 */
function roleClaims(claims: Record<string, unknown>): Record<string, Record<string, string>> {
  const role = (meta: unknown): Record<string, string> => {
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return {};
    const value = Object.hasOwn(meta, 'role') ? (meta as Record<string, unknown>)['role'] : null;
    return typeof value === 'string' ? { role: value } : {};
  };
  return {
    app_metadata: role(claims['app_metadata']),
    user_metadata: role(claims['user_metadata']),
  };
}

type Payload = { Variables: AppEnv['Variables'] & { payload: unknown } };

/** 503 until AUTH_HOOK_SECRET is set; then 401 unless signed; 400 unless JSON. */
function signedJson(deps: AppDeps): MiddlewareHandler<Payload> {
  const secrets = deps.config.authHookSecrets;
  const verifier = secrets ? createHookVerifier(secrets) : null;
  return async (c, next) => {
    if (!verifier) {
      throw new ApiError(
        503,
        'not_configured',
        'AUTH_HOOK_SECRET is not set: the Auth hook routes are disabled.',
      );
    }
    const raw = await c.req.text();
    try {
      await verifier.verify(raw, c.req.raw.headers);
    } catch (err) {
      if (err instanceof SignatureError) {
        c.set('outcome', 'bad_signature');
        throw new ApiError(401, 'invalid_signature', `Invalid webhook signature: ${err.message}`);
      }
      throw err;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      throw new ApiError(400, 'invalid_json', 'The body is signed correctly but is not JSON.');
    }
    c.set('payload', payload);
    await next();
  };
}

function parse<S extends z.ZodType>(c: Context<Payload>, schema: S): z.infer<S> {
  const result = schema.safeParse(c.get('payload'));
  if (!result.success) {
    throw new ApiError(
      400,
      'invalid_payload',
      `The body does not match this hook's input: ${describeIssues(result.error)}`,
    );
  }
  return result.data;
}

function gatewayDetail(err: unknown): string {
  return err instanceof GatewayError ? `${err.kind}${err.code ? `:${err.code}` : ''}` : 'error';
}

export function hookRoutes(deps: AppDeps) {
  const { gateway, clock, logger } = deps;

  /** A failure the hook answers around: its kind goes in the log line; a bug gets its own. */
  function noteFailure(c: Context<Payload>, err: unknown) {
    c.set('detail', gatewayDetail(err));
    if (!(err instanceof GatewayError)) {
      logger.log({
        level: 'error',
        event: 'unexpected_error',
        request_id: c.get('requestId'),
        error: err instanceof Error ? err.name : typeof err,
      });
    }
  }
  const app = new Hono<Payload>();
  const signed = signedJson(deps);

  // Allow or refuse only: the user does not exist yet and, for OAuth/SSO, this id is not the
  // one that will be stored (docs/reference/auth-hooks.md#before-user-created). Which roles may
  // be chosen, and the sentence that says so, are the database's: the same function
  // public.hook_before_user_created that Auth can call as a Postgres hook, sent only the role
  // asked for. A sign-up that asks for none needs no database. If the database cannot answer
  // within the budget, the sign-up is let through (the sync never gives a role that is not
  // self-assignable from user_metadata, so nothing is granted by it) and the log says
  // `unchecked`.
  app.post('/before-user-created', signed, async (c) => {
    const { user } = parse(c, beforeUserCreatedSchema);
    const asked = user.user_metadata?.['role'];
    if (asked === undefined || asked === null || asked === '') {
      c.set('outcome', 'allowed');
      return c.json({}, 200);
    }
    let answer: BeforeUserCreatedAnswer;
    try {
      ({ result: answer } = await rpcWithRetry<BeforeUserCreatedAnswer>(
        gateway,
        clock,
        'hook_before_user_created',
        { event: { user: { user_metadata: { role: asked } } } },
        BEFORE_USER_CREATED_RETRY,
      ));
    } catch (err) {
      c.set('outcome', 'unchecked');
      noteFailure(c, err);
      return c.json({}, 200);
    }
    if (!answer?.error) {
      c.set('outcome', 'allowed');
      return c.json({}, 200);
    }
    c.set('outcome', 'rejected');
    // HTTP 200: Supabase Auth reads the error object only from a 200/202
    // (docs/reference/auth-hooks.md#error-object).
    return c.json({ error: answer.error }, 200);
  });

  // The auth.users trigger has already written the row, in the same transaction as the insert.
  // This call heals anything the trigger recorded as a failure. If the database cannot be
  // reached within the budget we still answer 200 {} (fail open): the account exists, so an
  // error here would only show the person a sign-up failure for an account they have, and
  // POST /resync drains whatever is left (the outcome is logged as `deferred`).
  app.post('/after-user-created', signed, async (c) => {
    const { user } = parse(c, afterUserCreatedSchema);
    c.set('userId', user.id);
    try {
      const { result, attempts } = await rpcWithRetry<SyncResult>(
        gateway,
        clock,
        'sync_user',
        { p_user_id: user.id, p_source: 'hook:after-user-created' },
        AFTER_USER_CREATED_RETRY,
      );
      c.set('outcome', result.action === 'failed' ? 'deferred' : 'synced');
      c.set('detail', `${result.action}${attempts > 1 ? ` after ${attempts} attempts` : ''}`);
    } catch (err) {
      c.set('outcome', 'deferred');
      noteFailure(c, err);
    }
    return c.json({}, 200);
  });

  // Every input claim goes back unchanged (the answer replaces the whole JWT payload), but
  // user_role, which is ours: the database's user_sync.token_role, the same rule the
  // Postgres-function hook applies:
  // - app_metadata.role if it is a known role, else the row's role if it is self-assignable,
  //   else the default; user_metadata counts only while there is no row yet (a self-assignable
  //   role asked for at sign-up). This holds when the sync fails or is deferred: a revoked admin
  //   gets the default, not the row's stale role.
  // - A user the database cannot see yet: Auth mints the first token of an anonymous sign-in,
  //   an OAuth implicit flow or an id_token sign-in inside the transaction that creates the
  //   user, before it commits. Then the creation rule applies to the claims we send along,
  //   which Auth filled from that row and signed.
  // An incoming user_role is always dropped (GoTrue's own claims never carry one). Without
  // the database (unreachable, or an error within the budget) the claims go back without
  // user_role rather than failing every login: RLS must treat a missing user_role as the
  // least privilege.
  app.post('/custom-access-token', signed, async (c) => {
    const input = parse(c, customAccessTokenSchema);
    c.set('userId', input.user_id);
    // The raw parsed claims, not zod's copy, so nothing is reshaped.
    const claims = { ...(c.get('payload') as { claims: Record<string, unknown> }).claims };
    delete claims['user_role'];
    try {
      const { result } = await rpcWithRetry<SyncResult>(
        gateway,
        clock,
        'sync_user',
        {
          p_user_id: input.user_id,
          p_source: 'hook:custom-access-token',
          p_claims: roleClaims(claims),
        },
        CUSTOM_ACCESS_TOKEN_RETRY,
      );
      if (typeof result.user_role === 'string') {
        claims['user_role'] = result.user_role;
        c.set('outcome', 'claims_added');
        c.set('detail', result.action);
      } else {
        c.set('outcome', 'no_role');
        c.set('detail', result.action);
      }
    } catch (err) {
      c.set('outcome', 'claims_unchanged');
      noteFailure(c, err);
    }
    // JSON.stringify recurses, and a user can nest their own user_metadata thousands deep
    // (updateUser, stored as jsonb, sent back in every token's claims): such claims cannot be
    // echoed. Answer that as the payload's fault (400), not as an internal error (500).
    let answer: string;
    try {
      answer = JSON.stringify({ claims });
    } catch {
      c.set('outcome', 'claims_too_deep');
      throw new ApiError(400, 'invalid_payload', 'The claims are nested too deeply to return.');
    }
    return c.body(answer, 200, { 'content-type': 'application/json' });
  });

  return app;
}
