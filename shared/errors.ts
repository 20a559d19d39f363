import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Every failure this service answers has one JSON shape:
 *
 *   {"error":{"code":"invalid_signature","message":"…","request_id":"…"}}
 *
 * and a non-2xx status. Supabase Auth reads an error object only from a 200/202 answer
 * (docs/reference/auth-hooks.md#error-object), where `{"error":{"message":…}}` means "reject
 * this sign-up or login". Our failures are
 * never 200, so Auth never mistakes them for a deliberate rejection: it turns them into its own
 * generic 500 ("Invalid payload sent to hook", "Hook requires authorization token", …). The one
 * deliberate rejection, before-user-created refusing a role, is a 200 with
 * `{"error":{"http_code":400,"message":…}}` built in routes/hooks.ts, not here.
 */
export type ErrorCode =
  | 'invalid_signature'
  | 'invalid_json'
  | 'invalid_payload'
  | 'unauthorized'
  | 'not_configured'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'invalid_argument'
  | 'database_unavailable'
  | 'database_timeout'
  | 'internal_error';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id?: string };
}

export function errorBody(code: ErrorCode, message: string, requestId?: string): ErrorBody {
  return { error: requestId ? { code, message, request_id: requestId } : { code, message } };
}

/** An expected failure: its status, code and message are safe to show to the caller. */
export class ApiError extends HTTPException {
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: ErrorCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(status, { message });
    this.name = 'ApiError';
    this.code = code;
    this.headers = headers;
  }
}

/** The code for an HTTPException thrown by Hono's own middleware (body limit, …). */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'invalid_payload';
    case 401:
      return 'unauthorized';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'payload_too_large';
    case 503:
      return 'database_unavailable';
    default:
      return status >= 500 ? 'internal_error' : 'invalid_payload';
  }
}
