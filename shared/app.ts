import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppDeps, AppEnv } from './context.ts';
import { ApiError, codeForStatus, errorBody } from './errors.ts';
import { GatewayError } from './gateway.ts';
import { healthRoutes } from './routes/health.ts';
import { hookRoutes } from './routes/hooks.ts';
import { resyncRoutes } from './routes/resync.ts';
import { webhookRoutes } from './routes/webhook.ts';

export type { AppDeps } from './context.ts';

/** Answered 200 so Supabase Auth goes on, but the database part did not happen. */
const DEGRADED = new Set(['deferred', 'claims_unchanged', 'unchecked']);

/**
 * The function's name: the platform passes paths as /user-sync/<route>
 * (docs/reference/edge-functions.md#request-path).
 */
export const BASE_PATH = '/user-sync';

/**
 * The user-sync app, built from its dependencies only (no globals, no runtime APIs beyond
 * fetch/Request/crypto.subtle), so Deno.serve, the Node server and app.request() run the same.
 */
export function createApp(deps: AppDeps) {
  const { config, clock, logger } = deps;
  // strict: false, so a hook URI configured with a trailing slash still reaches its route.
  const app = new Hono<AppEnv>({ strict: false }).basePath(BASE_PATH);

  app.use(requestId());
  app.use(async (c, next) => {
    const started = clock.now();
    await next();
    const status = c.res.status;
    const outcome = c.get('outcome') ?? (status < 400 ? 'ok' : 'error');
    logger.log({
      level: status >= 500 ? 'error' : status >= 400 || DEGRADED.has(outcome) ? 'warn' : 'info',
      event: 'request',
      request_id: c.get('requestId'),
      method: c.req.method,
      route: c.req.path.slice(0, 200),
      status,
      user_id: c.get('userId') ?? null,
      outcome,
      detail: c.get('detail'),
      duration_ms: clock.now() - started,
    });
  });
  app.use(methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      c.json(
        errorBody('method_not_allowed', `Use ${methods.join(' or ')}.`, c.get('requestId')),
        405,
        { Allow: methods.join(', ') },
      ),
  }));
  app.use(bodyLimit({
    maxSize: config.bodyLimitBytes,
    onError: () => {
      throw new ApiError(
        413,
        'payload_too_large',
        `The body is larger than ${config.bodyLimitBytes} bytes.`,
      );
    },
  }));

  app.route('/hooks', hookRoutes(deps));
  app.route('/webhooks', webhookRoutes(deps));
  app.route('/resync', resyncRoutes(deps));
  app.route('/health', healthRoutes(deps));

  app.notFound((c) => c.json(errorBody('not_found', 'No such route.', c.get('requestId')), 404));

  app.onError((err, c) => {
    const id = c.get('requestId');
    if (err instanceof ApiError) {
      if (!c.get('outcome')) c.set('outcome', err.code);
      return c.json(errorBody(err.code, err.message, id), err.status, err.headers);
    }
    if (err instanceof GatewayError) {
      c.set('detail', c.get('detail') ?? err.kind);
      if (err.kind === 'unavailable') {
        c.set('outcome', 'database_unavailable');
        return c.json(errorBody('database_unavailable', 'The database is unavailable.', id), 503);
      }
      if (err.kind === 'timeout') {
        c.set('outcome', 'database_timeout');
        return c.json(
          errorBody('database_timeout', 'The database did not answer in time.', id),
          504,
        );
      }
      if (err.kind === 'invalid_argument') {
        // 22023 messages are sentences written for people (docs/sql-api.md).
        c.set('outcome', 'invalid_argument');
        return c.json(errorBody('invalid_argument', err.message, id), 400);
      }
    } else if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return c.json(errorBody(codeForStatus(status), err.message || 'Request failed.', id), status);
    }
    // Anything else: a bug or a deployment mistake. Log its kind, answer nothing internal.
    c.set('outcome', 'internal_error');
    logger.log({
      level: 'error',
      event: 'unhandled_error',
      request_id: id,
      error: err instanceof GatewayError ? `GatewayError:${err.kind}:${err.code ?? ''}` : err.name,
    });
    return c.json(errorBody('internal_error', 'Internal error', id), 500);
  });

  return app;
}

export type App = ReturnType<typeof createApp>;
