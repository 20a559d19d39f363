// Every time limit the handlers set, in one place with its reason. Supabase Auth gives a hook
// 5 s in total, retries and our cold start included (docs/reference/auth-hooks.md), so the
// database gets a bounded share of it; other callers wait longer.
import type { RetryPolicy } from './retry.ts';

/** before-user-created, asking the database whether a role may be chosen: a sign-up waits. */
export const BEFORE_USER_CREATED_RETRY: RetryPolicy = {
  budgetMs: 2000,
  attemptTimeoutMs: 1500,
  backoffMs: 200,
};

/** after-user-created: the row is normally there already (the trigger wrote it). */
export const AFTER_USER_CREATED_RETRY: RetryPolicy = {
  budgetMs: 3000,
  attemptTimeoutMs: 1500,
  backoffMs: 250,
};

/** custom-access-token: a sign-in waits on it, so less than after-user-created. */
export const CUSTOM_ACCESS_TOKEN_RETRY: RetryPolicy = {
  budgetMs: 2000,
  attemptTimeoutMs: 1500,
  backoffMs: 200,
};

/** GET /health: a liveness probe must answer quickly, reachable database or not. */
export const HEALTH_PING_TIMEOUT_MS = 2000;

/** One sync for the database webhook: pg_net never retries, and nobody waits on the answer. */
export const WEBHOOK_SYNC_TIMEOUT_MS = 10_000;

/** The least a resync batch is given, even when the request's budget is nearly spent. */
export const RESYNC_BATCH_MIN_TIMEOUT_MS = 5000;
