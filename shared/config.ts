import { z } from 'zod';

/**
 * The function's configuration, parsed once at start from the environment. A malformed value
 * stops start-up with a message that names the variable (never its value). No secret has a
 * default: an unset one disables the routes that need it, and those routes say so.
 */
export interface Config {
  /** `whsec_…` secrets (the `v1,` prefix removed), in the order given; null: hooks disabled. */
  authHookSecrets: string[] | null;
  /** Bearer token the pg_net database webhook sends; null: webhook route disabled. */
  webhookSecret: string | null;
  /** Bearer token for POST /resync besides the project's service-role/secret keys. */
  adminToken: string | null;
  supabaseUrl: string | null;
  /** Legacy service_role JWT (SUPABASE_SERVICE_ROLE_KEY). */
  serviceRoleKey: string | null;
  /** Values of SUPABASE_SECRET_KEYS (`{"default":"sb_secret_…"}`), `default` first. */
  secretKeys: string[];
  /** DATABASE_URL, else SUPABASE_DB_URL. */
  databaseUrl: string | null;
  bodyLimitBytes: number;
  /** How long one POST /resync may keep starting new batches (the platform kills at 150 s). */
  resyncBudgetMs: number;
  resyncBatchSize: number;
  /** USER_SYNC_GATEWAY: which database adapter (gateways/from-config.ts). */
  gateway: 'auto' | 'direct' | 'supabase-js';
  /** PORT, where the entry serves outside the platform (the edge runtime ignores it); 0 picks one. */
  port: number | null;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

/**
 * GoTrue's own secret format (docs/reference/hook-signatures.md#secret-format), as the CLI's
 * anchored regex.
 */
const HOOK_SECRET = /^v1,whsec_[A-Za-z0-9+/=]{32,88}$/;

/** Empty and whitespace-only values count as unset (`env()` in config.toml leaves them empty). */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    schema.optional(),
  );

const token = z.string().min(16, 'must be at least 16 characters').regex(
  /^\S+$/,
  'must not contain whitespace',
);

const postgresUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'postgres:' || u.protocol === 'postgresql:';
  } catch {
    return false;
  }
}, 'must be a postgres:// or postgresql:// URL');

const positiveInt = (max: number) =>
  z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(
    z.number().int().min(1).max(max),
  );

const envSchema = z.object({
  AUTH_HOOK_SECRET: optional(
    z.string().transform((v, ctx) => {
      const parts = v.split('|').map((s) => s.trim());
      for (const [i, part] of parts.entries()) {
        if (!HOOK_SECRET.test(part)) {
          ctx.addIssue({
            code: 'custom',
            message: `entry ${i + 1} of ${parts.length} is not in the form v1,whsec_<base64> ` +
              '(several secrets are joined by "|")',
          });
          return z.NEVER;
        }
      }
      return parts.map((p) => p.slice('v1,'.length));
    }),
  ),
  USER_SYNC_WEBHOOK_SECRET: optional(token),
  USER_SYNC_ADMIN_TOKEN: optional(token),
  SUPABASE_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
  SUPABASE_SERVICE_ROLE_KEY: optional(z.string().regex(/^\S+$/, 'must not contain whitespace')),
  SUPABASE_SECRET_KEYS: optional(
    z.string().transform((v, ctx) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(v);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: 'must be a JSON object like {"default":"sb_secret_…"}',
        });
        return z.NEVER;
      }
      const dict = z.record(z.string(), z.string().min(1)).safeParse(parsed);
      if (!dict.success) {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object of non-empty strings' });
        return z.NEVER;
      }
      const { default: first, ...rest } = dict.data;
      return [...(first ? [first] : []), ...Object.values(rest)];
    }),
  ),
  DATABASE_URL: optional(postgresUrl),
  SUPABASE_DB_URL: optional(postgresUrl),
  USER_SYNC_BODY_LIMIT_BYTES: optional(positiveInt(10 * 1024 * 1024)),
  USER_SYNC_RESYNC_BUDGET_MS: optional(positiveInt(600_000)),
  USER_SYNC_RESYNC_BATCH_SIZE: optional(positiveInt(50_000)),
  USER_SYNC_GATEWAY: optional(
    z.enum(['auto', 'direct', 'supabase-js'], { error: 'must be auto, direct or supabase-js' }),
  ),
  PORT: optional(
    z.string().regex(/^\d+$/, 'must be a port number (0 to 65535)').transform(Number).pipe(
      z.number().int().max(65535, 'must be a port number (0 to 65535)'),
    ),
  ),
});

/** 256 KiB: room for any hook payload (Auth's own response cap is 200 KiB). */
export const DEFAULT_BODY_LIMIT_BYTES = 256 * 1024;
/** A third of the 150 s wall clock of a Free-plan function. */
export const DEFAULT_RESYNC_BUDGET_MS = 50_000;
export const DEFAULT_RESYNC_BATCH_SIZE = 1000;

export function parseConfig(env: Env): Config {
  const picked: Env = {};
  for (const key of Object.keys(envSchema.shape)) picked[key] = env[key];
  const result = envSchema.safeParse(picked);
  if (!result.success) {
    // Issue messages come from the schema above and never contain the value itself.
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const e = result.data;
  return {
    authHookSecrets: e.AUTH_HOOK_SECRET ?? null,
    webhookSecret: e.USER_SYNC_WEBHOOK_SECRET ?? null,
    adminToken: e.USER_SYNC_ADMIN_TOKEN ?? null,
    supabaseUrl: e.SUPABASE_URL ?? null,
    serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY ?? null,
    secretKeys: e.SUPABASE_SECRET_KEYS ?? [],
    databaseUrl: e.DATABASE_URL ?? e.SUPABASE_DB_URL ?? null,
    bodyLimitBytes: e.USER_SYNC_BODY_LIMIT_BYTES ?? DEFAULT_BODY_LIMIT_BYTES,
    resyncBudgetMs: e.USER_SYNC_RESYNC_BUDGET_MS ?? DEFAULT_RESYNC_BUDGET_MS,
    resyncBatchSize: e.USER_SYNC_RESYNC_BATCH_SIZE ?? DEFAULT_RESYNC_BATCH_SIZE,
    gateway: e.USER_SYNC_GATEWAY ?? 'auto',
    port: e.PORT ?? null,
  };
}
