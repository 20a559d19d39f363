import { z } from 'zod';

/**
 * Inputs of the Auth hooks (docs/reference/auth-hooks.md) and the pg_net webhook
 * (docs/reference/database-webhooks.md#payload). Objects are loose: GoTrue adds fields between
 * versions and an unknown field must not fail a sign-up. Only what
 * the routes rely on, and what GoTrue always sends, is required.
 */
const uuid = z.string().regex(
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'must be a UUID',
);

/** Go's time.Time JSON; a zero time is "0001-01-01T00:00:00Z" (unsaved users). */
const goTime = z.string().regex(
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
  'must be an RFC 3339 time',
);

const metadata = z.looseObject({
  uuid: uuid,
  time: goTime,
  name: z.string().optional(),
  ip_address: z.string().optional(),
});

const jsonObject = z.record(z.string(), z.unknown());

/**
 * User object (docs/reference/auth-hooks.md#user-object). Timestamps beyond these are optional
 * (omitempty).
 */
export const hookUserSchema = z.looseObject({
  id: uuid,
  aud: z.string(),
  role: z.string(),
  email: z.string(),
  phone: z.string(),
  // A Go nil map marshals as null; treat it like {}.
  app_metadata: jsonObject.nullable(),
  user_metadata: jsonObject.nullable(),
  identities: z.array(z.unknown()).nullable().optional(),
  created_at: goTime,
  updated_at: goTime,
  is_anonymous: z.boolean(),
});

export const beforeUserCreatedSchema = z.looseObject({
  metadata: metadata.optional(),
  user: hookUserSchema,
});

export const afterUserCreatedSchema = beforeUserCreatedSchema;

/**
 * `aud` is normally a string, but GoTrue may serialise it as an array
 * (docs/reference/auth-hooks.md#custom-access-token).
 */
const aud = z.union([z.string(), z.array(z.string())]);

export const accessTokenClaimsSchema = z.looseObject({
  iss: z.string().optional(),
  sub: z.string(),
  aud,
  exp: z.number().int(),
  iat: z.number().int(),
  email: z.string(),
  phone: z.string(),
  role: z.string(),
  aal: z.string().optional(),
  amr: z.array(z.unknown()).optional(),
  session_id: z.string().optional(),
  is_anonymous: z.boolean(),
  app_metadata: jsonObject.optional(),
  user_metadata: jsonObject.optional(),
});

export const customAccessTokenSchema = z.looseObject({
  metadata: metadata.optional(),
  user_id: uuid,
  claims: accessTokenClaimsSchema,
  authentication_method: z.string().optional(),
});

/**
 * pg_net database webhook (docs/reference/database-webhooks.md#payload). `record`/`old_record`
 * are rows: only `id` is read.
 */
const row = z.record(z.string(), z.unknown()).nullable();

export const dbWebhookSchema = z.looseObject({
  type: z.string(),
  table: z.string(),
  schema: z.string(),
  record: row,
  old_record: row,
});

export const resyncBodySchema = z.strictObject({
  dry_run: z.boolean().optional(),
  user_ids: z.array(uuid).min(1).max(10_000).optional(),
  batch_size: z.number().int().min(1).max(50_000).optional(),
  cursor: uuid.optional(),
}).refine((b) => !(b.user_ids && (b.batch_size !== undefined || b.cursor !== undefined)), {
  message: 'user_ids cannot be combined with batch_size or cursor',
});

export { uuid as uuidSchema };

/** A short, value-free summary of what did not match (zod messages never quote the input). */
export function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 5).map((i) => {
    const path = i.path.length ? i.path.join('.') : '(body)';
    return `${path}: ${i.message}`;
  }).join('; ');
}
