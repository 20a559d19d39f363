// The report of public.resync_users (docs/sql-api.md), and how the reports of consecutive
// batches add up: used by the function's POST /resync and by its client (cli/resync-client.ts).

/** public.resync_users' report; `batches` is added by POST /resync. */
export interface ResyncReport {
  dry_run: boolean;
  scope: string;
  auth_users: number;
  app_users: number;
  missing: number;
  stale: number;
  orphaned: number;
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
  failed: number;
  failures_pending: number;
  next_cursor: string | null;
  done: boolean;
  batches?: number;
}

/** The counts that add up over batches (the SQL adds the same ones: user_sync.add_counts). */
export const SUMMED = [
  'auth_users',
  'app_users',
  'missing',
  'stale',
  'orphaned',
  'inserted',
  'updated',
  'deleted',
  'unchanged',
  'failed',
] as const;

/**
 * The report of a run so far (null before the first batch) with the next batch's report added:
 * counts summed, the state (pending failures, cursor, done) taken from the later one.
 */
export function addReport(total: ResyncReport | null, next: ResyncReport): ResyncReport {
  if (!total) return { ...next };
  const sum: ResyncReport = { ...total };
  for (const key of SUMMED) sum[key] = total[key] + next[key];
  sum.failures_pending = next.failures_pending;
  sum.next_cursor = next.next_cursor;
  sum.done = next.done;
  if (total.batches !== undefined || next.batches !== undefined) {
    sum.batches = (total.batches ?? 0) + (next.batches ?? 0);
  }
  return sum;
}
