// The report of public.resync_users (docs/sql-api.md), and how the reports of consecutive
// batches add up: used by the function's POST /resync and by its client (cli/resync-client.ts).
//
// The one TypeScript definition of the report's keys. The SQL writes them out too
// (user_sync.add_counts, and resync_users' state); tests/db/resync.test.ts holds what the SQL
// returns to exactly these lists.

/** The counts: they add up over batches (the SQL adds the same ones: user_sync.add_counts). */
export const REPORT_COUNT_KEYS = [
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

export type ReportCountKey = (typeof REPORT_COUNT_KEYS)[number];

/** The state of a run after the batch: taken from the later report, never added. */
export interface ReportState {
  dry_run: boolean;
  scope: string;
  failures_pending: number;
  next_cursor: string | null;
  done: boolean;
}

export const REPORT_STATE_KEYS = [
  'dry_run',
  'scope',
  'failures_pending',
  'next_cursor',
  'done',
] as const satisfies readonly (keyof ReportState)[];

// A key of ReportState missing from REPORT_STATE_KEYS fails to compile here, named.
type UnlistedStateKey = Exclude<keyof ReportState, (typeof REPORT_STATE_KEYS)[number]>;
const _stateKeysListed: [UnlistedStateKey] extends [never] ? true : UnlistedStateKey = true;

/** Every key of resync_users' report (docs/sql-api.md). */
export const REPORT_KEYS = [...REPORT_COUNT_KEYS, ...REPORT_STATE_KEYS] as const;

/** public.resync_users' report; `batches` is added by POST /resync. */
export type ResyncReport = Record<ReportCountKey, number> & ReportState & { batches?: number };

/** A report with every count 0: what a run that saw nobody reports. */
export function zeroCounts(): Record<ReportCountKey, number> {
  return Object.fromEntries(REPORT_COUNT_KEYS.map((key) => [key, 0])) as Record<
    ReportCountKey,
    number
  >;
}

/**
 * The report of a run so far (null before the first batch) with the next batch's report added:
 * counts summed, the state (pending failures, cursor, done) taken from the later one.
 */
export function addReport(total: ResyncReport | null, next: ResyncReport): ResyncReport {
  if (!total) return { ...next };
  const sum: ResyncReport = { ...total };
  for (const key of REPORT_COUNT_KEYS) sum[key] = total[key] + next[key];
  sum.failures_pending = next.failures_pending;
  sum.next_cursor = next.next_cursor;
  sum.done = next.done;
  if (total.batches !== undefined || next.batches !== undefined) {
    sum.batches = (total.batches ?? 0) + (next.batches ?? 0);
  }
  return sum;
}
