import { Webhook, WebhookVerificationError } from 'standardwebhooks';

/**
 * Standard Webhooks verification as Supabase Auth signs (spec §2): HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<raw body>`, one `v1,<b64>` per configured secret in
 * `webhook-signature` (joined by ", "), timestamps within ±5 minutes. The library does the
 * work; it splits the header on spaces and ignores the trailing comma, and compares in
 * constant time. Its ±5 minute window reads the system clock (Date.now), not the app's injected
 * Clock: tests of old and future timestamps sign with real times offset by 6 minutes.
 */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface HookVerifier {
  /** Throws SignatureError unless some configured secret signed exactly this body. */
  verify(rawBody: string, headers: Headers): void;
}

/** @param secrets `whsec_<base64>` strings (config.ts has already removed `v1,`). */
export function createHookVerifier(secrets: readonly string[]): HookVerifier {
  if (secrets.length === 0) throw new Error('createHookVerifier needs at least one secret');
  // The library strips `whsec_` itself but not `v1,` (spec §2.2).
  const webhooks = secrets.map((s) => new Webhook(s));
  return {
    verify(rawBody, headers) {
      const wanted: Record<string, string> = {};
      for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
        const value = headers.get(name);
        if (value === null || value === '') {
          throw new SignatureError(`Missing ${name} header`);
        }
        wanted[name] = value;
      }
      let first: unknown;
      for (const webhook of webhooks) {
        try {
          // jsonParse: false, because the library JSON-parses after a successful check and a
          // validly signed body that is not JSON must be a 400, not a signature failure.
          webhook.verify(rawBody, wanted, { jsonParse: false });
          return;
        } catch (err) {
          first ??= err;
        }
      }
      if (first instanceof WebhookVerificationError) throw new SignatureError(first.message);
      throw new SignatureError('Signature could not be verified');
    },
  };
}
