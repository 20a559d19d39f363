import { Hono } from 'hono';
import { bearerToken, timingSafeEqualText } from '../bearer.ts';
import type { AppDeps, AppEnv } from '../context.ts';
import { ApiError } from '../errors.ts';
import { GatewayError } from '../gateway.ts';
import { dbWebhookSchema, describeIssues, uuidSchema } from '../schemas.ts';
import { readJson } from '../body.ts';
import { WEBHOOK_SYNC_TIMEOUT_MS } from '../timeouts.ts';
import type { SyncResult } from './hooks.ts';

const SYNCED_OPERATIONS = new Set(['INSERT', 'UPDATE', 'DELETE']);

/**
 * The pg_net database webhook on auth.users (docs/reference/database-webhooks.md). The payload
 * is only a hint: sync_user re-reads auth.users by id, so stale, duplicated and reordered events
 * end in the same state.
 * The record carries the password hash and every token column: it is never logged or echoed.
 */
export function webhookRoutes({ config, gateway }: AppDeps) {
  const app = new Hono<AppEnv>();

  app.post('/auth-users', async (c) => {
    if (!config.webhookSecret) {
      throw new ApiError(
        503,
        'not_configured',
        'USER_SYNC_WEBHOOK_SECRET is not set: the database webhook route is disabled.',
      );
    }
    const presented = bearerToken(c.req.header('authorization'));
    if (presented === null || !(await timingSafeEqualText(presented, config.webhookSecret))) {
      c.set('outcome', 'unauthorized');
      throw new ApiError(401, 'unauthorized', 'Missing or wrong bearer token.', {
        'WWW-Authenticate': 'Bearer',
      });
    }

    const parsed = dbWebhookSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      throw new ApiError(
        400,
        'invalid_payload',
        `Not a database webhook payload: ${describeIssues(parsed.error)}`,
      );
    }
    const event = parsed.data;
    // Anything else is acknowledged with a 2xx: a 4xx for an event we merely do not handle
    // only makes senders retry.
    if (event.schema !== 'auth' || event.table !== 'users' || !SYNCED_OPERATIONS.has(event.type)) {
      c.set('outcome', 'ignored');
      return c.json({ ignored: true }, 200);
    }
    const id = uuidSchema.safeParse(event.record?.['id'] ?? event.old_record?.['id']);
    if (!id.success) {
      throw new ApiError(400, 'invalid_payload', 'The event has no user id (record.id).');
    }
    c.set('userId', id.data);
    try {
      const result = await gateway.rpc<SyncResult>('sync_user', {
        p_user_id: id.data,
        p_source: 'webhook',
      }, { timeoutMs: WEBHOOK_SYNC_TIMEOUT_MS });
      c.set('outcome', result.action === 'failed' ? 'failed' : 'synced');
      c.set('detail', result.action);
      return c.json(result, 200);
    } catch (err) {
      if (err instanceof GatewayError) c.set('detail', err.kind);
      throw err;
    }
  });

  return app;
}
