import type { Context } from 'hono';
import { ApiError } from './errors.ts';

/**
 * The body as JSON whatever the Content-Type says. (zValidator('json') validates `{}` when the
 * Content-Type is not JSON, anchors §0.9: a `curl -d '{"dry_run":true}'` would then run a real
 * resync.) An empty body is `emptyAs`.
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
