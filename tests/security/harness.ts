// The real app behind a real socket, for the security suites: createApp with the direct gateway
// on this file's test database (server or PGlite), served by the Node server `npm start` uses
// (dev/server.ts: /functions/v1 stripped, the Node request streamed into a Fetch
// Request, the Response streamed back). Requests go out over node:http with a keep-alive
// agent, so a dropped or reset connection shows up as an error, never as a silent retry.

import { Agent, request } from 'node:http';
import { serve } from '../../dev/server.ts';
import { createApp } from '../../shared/app.ts';
import { systemClock } from '../../shared/clock.ts';
import { parseConfig } from '../../shared/config.ts';
import type { ErrorCode } from '../../shared/errors.ts';
import type { Gateway } from '../../shared/gateway.ts';
import { jsonLogger, type LogEntry, type Logger } from '../../shared/logger.ts';
import type { TestDb } from '../helpers/db.ts';
import { hookHeaders } from '../helpers/supabase-auth.ts';

export { gatewayFor } from '../helpers/app.ts';

/** Every secret the suites use; none is the fakes.ts value, so a leak names this suite. */
export const SECRETS = {
  hook: 'v1,whsec_' + Buffer.from('sec-hook-0123456789abcdefghijklmnopqrstuv').toString('base64'),
  oldHook: 'v1,whsec_' + Buffer.from('sec-oldhook-0123456789abcdefghijklmnopqr').toString('base64'),
  webhook: 'sec-webhook-7f3a9c1e5b2d4f60',
  admin: 'sec-admin-token-4e8b2a6c9d1f3e57',
  serviceRole: 'eyJhbGciOiJIUzI1NiJ9.sec-service-role-payload.sec-service-role-sig',
  secretKey: 'sb_secret_sec0123456789abcdefghijk',
} as const;

export const fullEnv = {
  AUTH_HOOK_SECRET: `${SECRETS.oldHook}|${SECRETS.hook}`,
  USER_SYNC_WEBHOOK_SECRET: SECRETS.webhook,
  USER_SYNC_ADMIN_TOKEN: SECRETS.admin,
  SUPABASE_SERVICE_ROLE_KEY: SECRETS.serviceRole,
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRETS.secretKey }),
};

/** Every line the app logs, kept both as entries and as the exact text jsonLogger would write. */
export interface CapturingLogger extends Logger {
  entries: LogEntry[];
  text(): string;
}

export function capturingLogger(): CapturingLogger {
  const entries: LogEntry[] = [];
  const lines: string[] = [];
  const json = jsonLogger((line) => lines.push(line));
  return {
    entries,
    log(entry) {
      entries.push(entry);
      json.log(entry);
    },
    text: () => lines.join('\n'),
  };
}

export interface AppServer {
  /** http://127.0.0.1:<port>/functions/v1/user-sync */
  base: string;
  port: number;
  /** The path the function's routes live under on this server. */
  prefix: string;
  logger: CapturingLogger;
  close(): Promise<void>;
}

/**
 * The app, configured from `env` by the real parseConfig, served by `npm start`'s own Node
 * server (dev/server.ts) on 127.0.0.1:<free port>.
 */
export async function startAppServer(
  gateway: Gateway,
  env: Record<string, string | undefined> = fullEnv,
): Promise<AppServer> {
  const logger = capturingLogger();
  const app = createApp({ config: parseConfig(env), gateway, clock: systemClock, logger });
  const serving = await serve(app, 0);
  return {
    base: serving.base,
    port: serving.port,
    prefix: '/functions/v1/user-sync',
    logger,
    close: serving.close,
  };
}

export interface RawRequest {
  method: string;
  /** Path under the function, e.g. `/hooks/before-user-created` (may carry a query). */
  path: string;
  /** Header values are sent as latin1 bytes: pass UTF-8 text through `utf8Header`. */
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Send the body in chunks without Content-Length (chunked transfer encoding). */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * A UTF-8 string as the latin1 "binary" string node:http writes byte for byte, without the
 * bytes HTTP forbids in a header value (CR, LF, NUL and other controls): those never reach a
 * server, the client refuses them.
 */
export const utf8Header = (text: string) =>
  Buffer.from(text, 'utf8').toString('latin1').replace(/[^\t\x20-\x7e\x80-\xff]/g, '');

/** One HTTP client per suite: keep-alive, so a connection the server drops fails the next call. */
export function httpClient(
  server: Pick<AppServer, 'port' | 'prefix'>,
  options: { keepAlive?: boolean } = {},
) {
  const agent = new Agent({ keepAlive: options.keepAlive ?? true, maxSockets: 4 });
  let requests = 0;
  const call = (req: RawRequest): Promise<RawResponse> =>
    new Promise((resolve, reject) => {
      requests++;
      const body = typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : req.body;
      const headers: Record<string, string> = { ...req.headers };
      if (body && !req.chunked) headers['content-length'] = String(body.byteLength);
      const out = request({
        host: '127.0.0.1',
        port: server.port,
        method: req.method,
        path: `${server.prefix}${req.path}`,
        headers,
        agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }));
        res.on('error', reject);
      });
      out.on('error', reject);
      out.setTimeout(15_000, () => out.destroy(new Error('no answer within 15 s')));
      if (body && req.chunked) {
        // Several writes, so the server sees a stream it has to cut off itself.
        const step = 64 * 1024;
        for (let i = 0; i < body.byteLength; i += step) {
          out.write(body.subarray(i, i + step));
        }
      } else if (body) {
        out.write(body);
      }
      out.end();
    });
  /** A hook as Supabase Auth sends it: POST /hooks/<name>, signed with `secret`. */
  const hook = async (
    name: string,
    body: string,
    { secret = SECRETS.hook, headers = {} }: { secret?: string; headers?: Record<string, string> } =
      {},
  ): Promise<RawResponse> =>
    await call({
      method: 'POST',
      path: `/hooks/${name}`,
      headers: { ...(await hookHeaders(body, { secrets: secret })), ...headers },
      body,
    });
  return {
    call,
    hook,
    get requests() {
      return requests;
    },
    close: () => agent.destroy(),
  };
}

export type HttpClient = ReturnType<typeof httpClient>;

/**
 * Serves the app on `gateway`, configured from `env`, for as long as fn runs, with a client to
 * it; then closes the client, the server and the gateway. The server's logger keeps what the
 * app logged.
 */
export async function whileServing<T>(
  gateway: Gateway,
  env: Record<string, string | undefined>,
  fn: (client: HttpClient, server: AppServer) => Promise<T>,
): Promise<T> {
  try {
    const server = await startAppServer(gateway, env);
    const client = httpClient(server);
    try {
      return await fn(client, server);
    } finally {
      client.close();
      await server.close();
    }
  } finally {
    await gateway.close?.();
  }
}

/** The codes each error status may carry (shared/errors.ts and the routes that throw them). */
export const CODES_BY_STATUS: Record<number, readonly ErrorCode[]> = {
  400: ['invalid_json', 'invalid_payload', 'invalid_argument'],
  401: ['invalid_signature', 'unauthorized'],
  404: ['not_found'],
  405: ['method_not_allowed'],
  413: ['payload_too_large'],
};

/**
 * Checks a non-2xx answer against the documented error shape: JSON, exactly
 * `{"error":{"code","message","request_id"?}}`, a code that belongs to the status, a
 * non-empty message. Returns a sentence saying what is wrong, or null.
 */
export function errorShapeProblem(res: RawResponse, method: string): string | null {
  if (method === 'HEAD') return res.body.length === 0 ? null : 'HEAD answered with a body';
  const type = String(res.headers['content-type'] ?? '');
  if (!type.startsWith('application/json')) return `content-type ${type}`;
  let json: unknown;
  try {
    json = JSON.parse(res.body.toString('utf8'));
  } catch {
    return 'body is not JSON';
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not an object';
  const keys = Object.keys(json);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${keys.join(',')}`;
  const error = (json as { error: unknown }).error as Record<string, unknown>;
  if (typeof error !== 'object' || error === null) return 'error is not an object';
  const extra = Object.keys(error).filter((k) => !['code', 'message', 'request_id'].includes(k));
  if (extra.length) return `extra keys ${extra.join(',')}`;
  const allowed = CODES_BY_STATUS[res.status];
  if (!allowed) return `undocumented status ${res.status}`;
  if (!allowed.includes(error['code'] as ErrorCode)) {
    return `code ${String(error['code'])} for status ${res.status}`;
  }
  if (typeof error['message'] !== 'string' || error['message'] === '') return 'empty message';
  if (error['request_id'] !== undefined && typeof error['request_id'] !== 'string') {
    return 'request_id is not a string';
  }
  return null;
}

/**
 * A fingerprint of every row the function could write, with each row's xmin, so even an update
 * to the same values shows.
 */
export async function writeFingerprint(db: TestDb): Promise<Record<string, string>> {
  const rows = await db.query<{ t: string; n: string; h: string }>(`
    select 'public.users' as t, count(*)::text as n,
           md5(coalesce(string_agg(r::text || r.xmin::text, ',' order by r.id), '')) as h
      from public.users r
    union all
    select 'user_sync.sync_failures', count(*)::text,
           md5(coalesce(string_agg(r::text || r.xmin::text, ',' order by r.user_id), ''))
      from user_sync.sync_failures r
    union all
    select 'auth.users', count(*)::text,
           md5(coalesce(string_agg(r::text || r.xmin::text, ',' order by r.id), ''))
      from auth.users r`);
  return Object.fromEntries(rows.map((r) => [r.t, `${r.n}:${r.h}`]));
}
