/**
 * Standard Webhooks verification as Supabase Auth signs (docs/reference/hook-signatures.md), on
 * WebCrypto: HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<raw body>`, one `v1,<b64>` per
 * configured secret in `webhook-signature` (joined by ", "), timestamps within ±5 minutes. It
 * does what the
 * `standardwebhooks` library did, message for message: the header is split on spaces (the
 * trailing comma of each part is left with its version), only `v1` parts count, and each is
 * compared with the expected base64 in constant time. Not the library: it is CommonJS, so
 * loading it brought in Deno's Node compatibility layer, and its pure-JS SHA-256 ran cold on the
 * first request (together about 20 ms of a cold start, bench/coldstart.ts). The ±5 minute window
 * reads the system clock (Date.now), not the app's injected Clock: tests of old and future
 * timestamps sign with real times offset by 6 minutes.
 */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface HookVerifier {
  /** Rejects with SignatureError unless some configured secret signed exactly this body. */
  verify(rawBody: string, headers: Headers): Promise<void>;
}

const TOLERANCE_S = 5 * 60;
const utf8 = new TextEncoder();
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The key of a `whsec_<base64>` secret, imported once (not per request). */
function secretKey(secret: string): Promise<CryptoKey> {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!BASE64.test(b64)) throw new Error('The secret is not base64.');
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (raw.length === 0) throw new Error("Secret can't be empty.");
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Every byte compared whatever the first difference: the time says nothing about where. */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** @param secrets `whsec_<base64>` strings (config.ts has already removed `v1,`). */
export function createHookVerifier(secrets: readonly string[]): HookVerifier {
  if (secrets.length === 0) throw new Error('createHookVerifier needs at least one secret');
  const keys = secrets.map(secretKey);
  return {
    async verify(rawBody, headers) {
      const wanted: string[] = [];
      for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
        const value = headers.get(name);
        if (value === null || value === '') throw new SignatureError(`Missing ${name} header`);
        wanted.push(value);
      }
      const [id, stamp, signatures] = wanted as [string, string, string];
      const now = Math.floor(Date.now() / 1000);
      // parseInt, as the library: "1700000000abc" is read as 1700000000.
      const timestamp = parseInt(stamp, 10);
      if (Number.isNaN(timestamp)) throw new SignatureError('Invalid Signature Headers');
      if (now - timestamp > TOLERANCE_S) throw new SignatureError('Message timestamp too old');
      if (timestamp > now + TOLERANCE_S) throw new SignatureError('Message timestamp too new');
      const message = utf8.encode(`${id}.${timestamp}.${rawBody}`);
      const passed = signatures.split(' ').map((s) => s.split(','));
      // Every secret and every signature is tried: nothing returns early on a match.
      let matched = false;
      for (const key of keys) {
        const expected = utf8.encode(
          base64(new Uint8Array(await crypto.subtle.sign('HMAC', await key, message))),
        );
        for (const [version, signature] of passed) {
          if (version === 'v1' && timingSafeEqual(utf8.encode(signature ?? ''), expected)) {
            matched = true;
          }
        }
      }
      if (!matched) throw new SignatureError('No matching signature found');
    },
  };
}
