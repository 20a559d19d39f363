// A client of the function's POST /user-sync/resync (shared/routes/resync.ts): it walks the
// keyset cursor until the function says `done`, adds up the reports, and turns every way a call
// can fail into a ResyncError that says what to do about it. Used by `npm run resync` and the
// demo. The token goes in the Authorization header only: never in a message or a log line.

import { addReport, type ResyncReport } from '../shared/resync-report.ts';

export type { ResyncReport };

export type FailureKind =
  | 'refused' // 401/403, or the route is switched off (503 not_configured)
  | 'unreachable' // connection refused, DNS, timeout
  | 'not_found' // nothing at that URL: a wrong URL or function name
  | 'invalid' // the function rejected the arguments (400)
  | 'server'; // 5xx or an answer that is not a report

export class ResyncError extends Error {
  constructor(readonly kind: FailureKind, message: string, readonly status?: number) {
    super(message);
    this.name = 'ResyncError';
  }
}

/** Drift: what a real run would still have to write. */
export function driftOf(r: Pick<ResyncReport, 'missing' | 'stale' | 'orphaned'>): number {
  return r.missing + r.stale + r.orphaned;
}

/** In sync: no drift and no failure waiting to be retried. */
export function inSync(r: ResyncReport): boolean {
  return r.done && driftOf(r) === 0 && r.failures_pending === 0 && r.failed === 0;
}

/**
 * The resync endpoint for what a person typed: the function's base URL
 * (…/functions/v1/user-sync) or the route itself (…/user-sync/resync).
 */
export function resyncEndpoint(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ResyncError(
      'invalid',
      `Not a URL: "${input.slice(0, 200)}". Pass the function's URL, for example ` +
        'https://<ref>.supabase.co/functions/v1/user-sync',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ResyncError('invalid', `The URL must start with http:// or https://.`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/resync') ? path : `${path}/resync`;
  url.search = '';
  url.hash = '';
  return url;
}

/** The URL as it may be shown: no user name, password, query or fragment. */
export function shownUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export interface CallOptions {
  /** Per request: the route keeps starting batches for up to its budget (50 s by default). */
  timeoutMs?: number;
  /** Retries after a connection failure or a 502/503/504 (not after a refusal). */
  retries?: number;
  /** Wait before the first retry, doubled each time. */
  backoffMs?: number;
  fetch?: typeof fetch;
}

export interface ResyncBody {
  dry_run?: boolean;
  batch_size?: number;
  cursor?: string;
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if ((err as Error)?.name === 'TimeoutError') return 'no answer in time';
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}

/** The error a non-2xx answer stands for, with the function's own message when it sent one. */
async function failureFor(res: Response, url: URL): Promise<ResyncError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const ours = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof ours?.code === 'string' ? ours.code : undefined;
  const message = typeof ours?.message === 'string' ? ours.message.slice(0, 300) : undefined;
  const where = shownUrl(url);
  if (res.status === 401 || res.status === 403) {
    if (code === 'unauthorized') {
      return new ResyncError(
        'refused',
        `The function refused the token (HTTP ${res.status}). Pass the value of the function's ` +
          "USER_SYNC_ADMIN_TOKEN secret (or the project's secret key) with --token or the " +
          'USER_SYNC_ADMIN_TOKEN environment variable.',
        res.status,
      );
    }
    return new ResyncError(
      'refused',
      `HTTP ${res.status} from ${where}, before the function ran: the platform asked for a JWT. ` +
        'Deploy the function with verify_jwt off (supabase functions deploy user-sync ' +
        '--no-verify-jwt); see docs/troubleshooting.md.',
      res.status,
    );
  }
  if (res.status === 503 && code === 'not_configured') {
    return new ResyncError('refused', `The function says: ${message}`, res.status);
  }
  if (res.status === 404) {
    return new ResyncError(
      'not_found',
      `Nothing answers at ${where} (HTTP 404). Pass the function's URL, for example ` +
        'https://<ref>.supabase.co/functions/v1/user-sync (or http://127.0.0.1:54321/functions/v1/user-sync for npm start).',
      404,
    );
  }
  if (res.status === 400) {
    return new ResyncError(
      'invalid',
      `The function rejected the request: ${message ?? 'HTTP 400'}`,
      400,
    );
  }
  return new ResyncError(
    'server',
    `HTTP ${res.status} from ${where}${message ? `: ${message}` : ''}` +
      (code === 'internal_error' ? ' (see the function logs for this request id)' : ''),
    res.status,
  );
}

const RETRIED_STATUS = new Set([502, 503, 504]);

/** One POST /resync, retried on connection failures and gateway errors. */
export async function postResync(
  endpoint: URL,
  token: string,
  body: ResyncBody,
  opts: CallOptions = {},
): Promise<ResyncReport> {
  const doFetch = opts.fetch ?? fetch;
  const retries = opts.retries ?? 2;
  let wait = opts.backoffMs ?? 500;
  for (let attempt = 0;; attempt++) {
    let failure: ResyncError;
    try {
      const res = await doFetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 140_000),
      });
      if (res.ok) {
        const report = await res.json().catch(() => null) as ResyncReport | null;
        if (!report || typeof report !== 'object' || typeof report.done !== 'boolean') {
          throw new ResyncError(
            'server',
            `${shownUrl(endpoint)} answered ${res.status} but not with a resync report: ` +
              'is this the user-sync function?',
            res.status,
          );
        }
        return report;
      }
      failure = await failureFor(res, endpoint);
      // A 503 the function chose (not_configured) will not change by retrying.
      if (!RETRIED_STATUS.has(res.status) || failure.kind === 'refused') throw failure;
    } catch (err) {
      if (err instanceof ResyncError) {
        if (err.kind !== 'server' || !RETRIED_STATUS.has(err.status ?? 0)) throw err;
        failure = err;
      } else {
        failure = new ResyncError(
          'unreachable',
          `Cannot reach ${shownUrl(endpoint)}: ${describeNetworkError(err)}. ` +
            'Is the URL right, and is the function running (npm start, or deployed)?',
        );
      }
    }
    if (attempt >= retries) throw failure;
    await new Promise((r) => setTimeout(r, wait));
    wait *= 2;
  }
}

export interface Progress {
  /** The reports added up so far. */
  total: ResyncReport;
  /** This request's report. */
  last: ResyncReport;
  requests: number;
}

export interface RunOptions extends CallOptions {
  dryRun: boolean;
  /** Users per batch (the function's default when unset). */
  batchSize?: number;
  onProgress?: (p: Progress) => void;
}

/**
 * Every user, request after request: the function walks batches until its time budget, then
 * answers `done: false` and a cursor to continue from.
 */
export async function runResync(
  endpoint: URL,
  token: string,
  opts: RunOptions,
): Promise<ResyncReport & { requests: number }> {
  let cursor: string | undefined;
  let total: ResyncReport | null = null;
  let requests = 0;
  for (;;) {
    const body: ResyncBody = { dry_run: opts.dryRun };
    if (opts.batchSize !== undefined) body.batch_size = opts.batchSize;
    if (cursor !== undefined) body.cursor = cursor;
    const report = await postResync(endpoint, token, body, opts);
    requests++;
    total = addReport(total, report);
    opts.onProgress?.({ total, last: report, requests });
    if (report.done) break;
    if (typeof report.next_cursor !== 'string' || report.next_cursor === cursor) {
      throw new ResyncError(
        'server',
        'The function answered done: false without a new next_cursor; stopping.',
      );
    }
    cursor = report.next_cursor;
  }
  return { ...total, scope: 'all', requests };
}
