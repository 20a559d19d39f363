import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { type Gateway, GatewayError, type GatewayErrorKind, kindForSqlState } from '../gateway.ts';
import { assertSqlName } from '../gateway.ts';

/** The nil UUID: sync_user answers `not_found` for it and writes nothing. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export interface SupabaseJsGatewayOptions {
  url: string;
  /** An `sb_secret_…` key or the legacy service_role JWT. */
  key: string;
  /** Injected in tests to capture the exact requests. */
  fetch?: typeof fetch;
}

class NoWebSocket {
  constructor() {
    throw new Error('The user-sync gateway does not use Realtime');
  }
}

/**
 * PostgREST's error body (docs/reference/postgrest.md#errors), as supabase-js hands it back;
 * `status` 0 = no answer.
 */
interface PostgrestFailure {
  error: { code?: string; message?: string } | null;
  status: number;
}

/**
 * The error kind for a failed supabase-js call. No answer at all, or the gateway's 502/503/504,
 * or PostgREST's pool timeout (PGRST003) mean the database could not be reached; otherwise the
 * SQLSTATE or PGRST code decides.
 */
export function kindForPostgrest(res: PostgrestFailure, aborted: boolean): GatewayErrorKind {
  const code = res.error?.code ?? '';
  if (res.status === 0) return aborted ? 'timeout' : 'unavailable';
  if (code === 'PGRST003' || [502, 503, 504, 520].includes(res.status) && !/^\d/.test(code)) {
    return 'unavailable';
  }
  if (code === 'PGRST202') return 'not_found';
  if (/^PGRST3\d\d$/.test(code) || res.status === 401 || res.status === 403) return 'forbidden';
  if (/^[0-9A-Z]{5}$/.test(code)) return kindForSqlState(code);
  return 'failed';
}

/** The key supabase-js should send: a new secret key if the project has one, else service_role. */
export function serviceKey(
  config: { secretKeys: readonly string[]; serviceRoleKey: string | null },
): string | null {
  return config.secretKeys[0] ?? config.serviceRoleKey;
}

/**
 * Calls the SQL functions through PostgREST: `POST {SUPABASE_URL}/rest/v1/rpc/<fn>` with the
 * named arguments as a JSON object, `apikey` and `Authorization: Bearer` the service key, and
 * `Content-Profile: public` (docs/reference/postgrest.md#supabase-js-requests). supabase-js
 * never retries a POST, and neither does this adapter: the routes decide.
 */
export function createSupabaseJsGateway(options: SupabaseJsGatewayOptions): Gateway {
  const client: SupabaseClient = createClient(options.url, options.key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: options.fetch ? { fetch: options.fetch } : {},
    // Realtime is never used. Its client looks for a WebSocket when constructed, which Node 20
    // lacks; this stand-in keeps construction runtime-neutral and fails loudly if ever used.
    realtime: { transport: NoWebSocket as never },
  });

  async function rpc<T>(
    fn: string,
    args: Record<string, unknown>,
    opts: { timeoutMs?: number } = {},
  ): Promise<T> {
    assertSqlName(fn);
    const controller = new AbortController();
    const timer = opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(), opts.timeoutMs);
    try {
      const res = await client.rpc(fn, args).abortSignal(controller.signal);
      if (res.error) {
        const kind = kindForPostgrest(res, controller.signal.aborted);
        const message = kind === 'invalid_argument'
          ? res.error.message
          : `${fn}: ${res.status || 'no answer'} ${res.error.code ?? ''}`.trim();
        throw new GatewayError(kind, message, res.error.code || undefined);
      }
      return res.data as T;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    rpc,
    async ping(opts) {
      // PostgREST alone answering says nothing about the database; a real call does.
      await rpc('sync_user', { p_user_id: NIL_UUID }, opts);
    },
  };
}
