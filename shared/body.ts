import type { Context } from 'hono';
import { ApiError } from './errors.ts';

/**
 * The body as JSON whatever the Content-Type says. This is why the routes do not use
 * @hono/zod-validator: its zValidator('json') validates `{}` when the Content-Type is not JSON,
 * so a `curl -d '{"dry_run":true}'` (sent as form data) would run a real resync. An empty body
 * is `emptyAs`.
 */
export async function readJson(c: Context, emptyAs?: unknown): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '' && emptyAs !== undefined) return emptyAs;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'The body is not JSON.');
  }
}
