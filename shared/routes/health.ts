import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../context.ts';
import { errorBody } from '../errors.ts';
import { GatewayError } from '../gateway.ts';
import { HEALTH_PING_TIMEOUT_MS } from '../timeouts.ts';

/** Liveness plus database reachability. Unauthenticated, so it says nothing else. */
export function healthRoutes({ gateway, clock }: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get('/', async (c) => {
    const started = clock.now();
    try {
      await gateway.ping({ timeoutMs: HEALTH_PING_TIMEOUT_MS });
      c.set('outcome', 'ok');
      return c.json({ status: 'ok', database: 'ok', database_ms: clock.now() - started }, 200);
    } catch (err) {
      c.set('outcome', 'database_unreachable');
      c.set('detail', err instanceof GatewayError ? err.kind : 'error');
      return c.json({
        status: 'unavailable',
        database: 'unreachable',
        ...errorBody('database_unavailable', 'The database did not answer.', c.get('requestId')),
      }, 503);
    }
  });
  return app;
}
