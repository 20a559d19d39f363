/**
 * The database as the edge function sees it: SQL functions called by name with named arguments,
 * the way PostgREST's RPC calls them (docs/reference/postgrest.md#rpc-request). Two adapters:
 * gateways/supabase-js.ts (over PostgREST) and gateways/direct.ts (over a Postgres connection,
 * as service_role).
 */
export interface RpcOptions {
  /** Give up after this long (the call is aborted or its statement cancelled). */
  timeoutMs?: number;
}

export interface Gateway {
  rpc<T>(fn: string, args: Record<string, unknown>, options?: RpcOptions): Promise<T>;
  /** Resolves when the database answers; rejects with a GatewayError otherwise. */
  ping(options?: RpcOptions): Promise<void>;
  close?(): Promise<void>;
}

/**
 * - unavailable: could not reach the database (connection refused or lost, pool exhausted,
 *   server shutting down); worth retrying.
 * - timeout: the call took longer than allowed.
 * - invalid_argument: the SQL function refused its arguments (SQLSTATE 22023, docs/sql-api.md).
 * - forbidden: missing grant (42501), i.e. a deployment mistake.
 * - not_found: no such function (42883, PGRST202): migrations not applied.
 * - failed: anything else.
 */
export type GatewayErrorKind =
  | 'unavailable'
  | 'timeout'
  | 'invalid_argument'
  | 'forbidden'
  | 'not_found'
  | 'failed';

export class GatewayError extends Error {
  readonly kind: GatewayErrorKind;
  /** SQLSTATE or PGRSTxxx code when the database or PostgREST gave one. */
  readonly code: string | undefined;

  constructor(kind: GatewayErrorKind, message: string, code?: string) {
    super(message);
    this.name = 'GatewayError';
    this.kind = kind;
    this.code = code;
  }
}

/**
 * The error kind for a SQLSTATE. 'unavailable' (worth a retry) is wider than what PostgREST
 * answers with 503 (only 57P01; see docs/reference/postgrest.md#errors): connection failures,
 * too many connections and a starting or stopping server all pass once the database is back.
 */
export function kindForSqlState(code: string): GatewayErrorKind {
  if (code === '22023') return 'invalid_argument';
  if (code === '42501') return 'forbidden';
  if (code === '42883') return 'not_found';
  if (code === '57014') return 'timeout'; // statement_timeout / cancel
  // 08: connection exception; 53: insufficient resources (too many connections);
  // 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
  if (code.startsWith('08') || code.startsWith('53') || /^57P0[1-3]$/.test(code)) {
    return 'unavailable';
  }
  return 'failed';
}

/** Only these names reach SQL text; everything else is a bound parameter. */
export const SQL_NAME = /^[a-z_][a-z0-9_]*$/;

export function assertSqlName(name: string): void {
  if (!SQL_NAME.test(name)) throw new GatewayError('invalid_argument', `Invalid SQL name: ${name}`);
}
