import { Hono } from 'hono';
import { bearerToken, matchesAny } from '../bearer.ts';
import { readJson } from '../body.ts';
import type { AppDeps, AppEnv } from '../context.ts';
import { ApiError } from '../errors.ts';
import { RESYNC_BATCH_MIN_TIMEOUT_MS } from '../timeouts.ts';
import { describeIssues, resyncBodySchema } from '../schemas.ts';
import { addReport, type ResyncReport } from '../resync-report.ts';

/**
 * POST /resync {dry_run?, user_ids?, batch_size?, cursor?}. Without user_ids it walks the users
 * in keyset batches, adding up each batch's counts, until the last batch or until the time
 * budget is spent; then `done` is false and `next_cursor` says where to continue.
 */
export function resyncRoutes({ config, gateway, clock }: AppDeps) {
  const app = new Hono<AppEnv>();
  const projectKeys = [config.serviceRoleKey, ...config.secretKeys].filter(
    (t): t is string => typeof t === 'string' && t.length > 0,
  );
  const accepted = [config.adminToken, ...projectKeys].filter(
    (t): t is string => typeof t === 'string' && t.length > 0,
  );

  app.post('/', async (c) => {
    if (accepted.length === 0) {
      throw new ApiError(
        503,
        'not_configured',
        'Resync is disabled: set USER_SYNC_ADMIN_TOKEN (or SUPABASE_SERVICE_ROLE_KEY / ' +
          'SUPABASE_SECRET_KEYS).',
      );
    }
    // The project's secret key may also come in `apikey`, the header Supabase clients send it
    // in: on the local stack kong replaces an `Authorization: Bearer sb_…` with a JWT before the
    // function sees it. A request is let in when either credential matches; both are checked
    // every time, in constant time.
    const bearer = bearerToken(c.req.header('authorization'));
    const apikey = c.req.header('apikey')?.trim() || null;
    const [bearerOk, apikeyOk] = await Promise.all([
      bearer ? matchesAny(bearer, accepted) : false,
      apikey ? matchesAny(apikey, projectKeys) : false,
    ]);
    if (!bearerOk && !apikeyOk) {
      c.set('outcome', 'unauthorized');
      throw new ApiError(401, 'unauthorized', 'Missing or wrong bearer token or apikey.', {
        'WWW-Authenticate': 'Bearer',
      });
    }
    const parsed = resyncBodySchema.safeParse(await readJson(c, {}));
    if (!parsed.success) {
      throw new ApiError(400, 'invalid_payload', describeIssues(parsed.error));
    }
    const body = parsed.data;
    const dryRun = body.dry_run ?? false;

    if (body.user_ids) {
      const report = await gateway.rpc<ResyncReport>('resync_users', {
        p_dry_run: dryRun,
        p_user_ids: body.user_ids,
      }, { timeoutMs: config.resyncBudgetMs });
      c.set('outcome', dryRun ? 'dry_run' : 'resynced');
      return c.json({ ...report, batches: 1 }, 200);
    }

    const started = clock.now();
    const batchSize = body.batch_size ?? config.resyncBatchSize;
    let cursor: string | null = body.cursor ?? null;
    let total: ResyncReport | null = null;
    let batches = 0;
    let slowest = 0;
    for (;;) {
      const batchStart = clock.now();
      const left = config.resyncBudgetMs - (batchStart - started);
      const report: ResyncReport = await gateway.rpc<ResyncReport>('resync_users', {
        p_dry_run: dryRun,
        p_user_ids: null,
        p_batch_size: batchSize,
        p_cursor: cursor,
      }, { timeoutMs: Math.max(left, RESYNC_BATCH_MIN_TIMEOUT_MS) });
      batches++;
      slowest = Math.max(slowest, clock.now() - batchStart);
      total = addReport(total, { ...report, done: report.done === true });
      if (total.done) break;
      // A batch that is not the last must move the cursor forward, or this loop would never end.
      if (typeof report.next_cursor !== 'string' || report.next_cursor === cursor) {
        throw new Error('resync_users returned a batch without a new next_cursor');
      }
      cursor = report.next_cursor;
      // Stop before a batch that, judging by the slowest so far, would not fit the budget.
      if (clock.now() - started + slowest > config.resyncBudgetMs) break;
    }
    c.set('outcome', dryRun ? 'dry_run' : 'resynced');
    c.set('detail', `${batches} batches${total.done ? '' : ', more to do'}`);
    return c.json({ ...total, scope: 'batches', batches, duration_ms: clock.now() - started }, 200);
  });

  return app;
}
