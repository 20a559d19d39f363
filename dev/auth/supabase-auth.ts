/**
 * Builds and signs hook requests byte for byte as Supabase Auth (GoTrue) does
 * (docs/reference/auth-hooks.md#transport, docs/reference/hook-signatures.md), independently of
 * the app's verifier (shared/signature.ts) and of the `standardwebhooks` package:
 *
 * - Go's encoding/json: compact, struct fields in declaration order (omitempty ones skipped),
 *   map keys sorted by byte order, and <, >, &, U+2028, U+2029 escaped as \u003c and so on;
 * - `webhook-id` a new UUID v4 per attempt, `webhook-timestamp` in seconds, and
 *   `webhook-signature` one `v1,<base64 HMAC-SHA256>` per secret, joined by ", ".
 *
 * Shared by the tests (through tests/helpers/supabase-auth.ts) and `npm run demo`.
 */

/** A Go struct: fields serialised in this order. Fields whose value is `undefined` are omitted. */
export class GoStruct {
  constructor(readonly fields: ReadonlyArray<readonly [string, unknown]>) {}
}

export const struct = (fields: ReadonlyArray<readonly [string, unknown]>) => new GoStruct(fields);

const utf8 = new TextEncoder();

function compareBytes(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Go's json.Marshal of the value (plain objects are maps, GoStruct instances are structs). */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof GoStruct) {
    const parts = value.fields
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${goString(k)}:${goJson(v)}`);
    return `{${parts.join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  switch (typeof value) {
    case 'string':
      return goString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error('Go cannot marshal NaN or Infinity');
      return JSON.stringify(value);
    case 'boolean':
      return String(value);
    case 'object': {
      const keys = Object.keys(value as object).sort(compareBytes);
      const obj = value as Record<string, unknown>;
      return `{${keys.map((k) => `${goString(k)}:${goJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new Error(`Cannot marshal ${typeof value}`);
  }
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * Go's time.Time JSON (RFC 3339, fractional seconds with trailing zeros trimmed, UTC as Z)
 * from a Date or a Postgres timestamptz text (which keeps microseconds).
 */
export function goTime(value: Date | string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return goTime(value.toISOString());
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$/
    .exec(value.trim());
  if (!m) throw new Error(`Not a timestamp: ${value}`);
  const [, date, time, frac = '', zone = 'Z'] = m;
  if (zone !== 'Z' && !/^[+-]00(:?00)?$/.test(zone)) {
    return goTime(new Date(value).toISOString()); // normalise to UTC (loses sub-ms digits)
  }
  const fraction = frac.replace(/0+$/, '');
  return `${date}T${time}${fraction ? `.${fraction}` : ''}Z`;
}

/** auth.users columns a user object is built from (docs/reference/auth-schema.md#users-table). */
export interface AuthUserRow {
  id: string;
  aud?: string | null;
  role?: string | null;
  email?: string | null;
  email_confirmed_at?: Date | string | null;
  invited_at?: Date | string | null;
  phone?: string | null;
  phone_confirmed_at?: Date | string | null;
  confirmation_sent_at?: Date | string | null;
  confirmed_at?: Date | string | null;
  recovery_sent_at?: Date | string | null;
  email_change?: string | null;
  email_change_sent_at?: Date | string | null;
  phone_change?: string | null;
  phone_change_sent_at?: Date | string | null;
  reauthentication_sent_at?: Date | string | null;
  last_sign_in_at?: Date | string | null;
  raw_app_meta_data?: Record<string, unknown> | null;
  raw_user_meta_data?: Record<string, unknown> | null;
  created_at?: Date | string | null;
  updated_at?: Date | string | null;
  banned_until?: Date | string | null;
  deleted_at?: Date | string | null;
  is_anonymous?: boolean | null;
}

const emptyToUndefined = (s: string | null | undefined) => (s ? s : undefined);

/**
 * The user object of a hook payload, in models.User's field order
 * (docs/reference/auth-hooks.md#user-object). `email` and `phone` are "" when NULL; optional
 * times and strings are omitted when NULL (omitempty).
 */
export function userObject(row: AuthUserRow, identities: unknown[] = []): GoStruct {
  return struct([
    ['id', row.id],
    ['aud', row.aud ?? ''],
    ['role', row.role ?? ''],
    ['email', row.email ?? ''],
    ['email_confirmed_at', goTime(row.email_confirmed_at)],
    ['invited_at', goTime(row.invited_at)],
    ['phone', row.phone ?? ''],
    ['phone_confirmed_at', goTime(row.phone_confirmed_at)],
    ['confirmation_sent_at', goTime(row.confirmation_sent_at)],
    ['confirmed_at', goTime(row.confirmed_at)],
    ['recovery_sent_at', goTime(row.recovery_sent_at)],
    ['new_email', emptyToUndefined(row.email_change)],
    ['email_change_sent_at', goTime(row.email_change_sent_at)],
    ['new_phone', emptyToUndefined(row.phone_change)],
    ['phone_change_sent_at', goTime(row.phone_change_sent_at)],
    ['reauthentication_sent_at', goTime(row.reauthentication_sent_at)],
    ['last_sign_in_at', goTime(row.last_sign_in_at)],
    ['app_metadata', row.raw_app_meta_data ?? {}],
    ['user_metadata', row.raw_user_meta_data ?? {}],
    ['identities', identities],
    ['created_at', goTime(row.created_at) ?? ZERO_TIME],
    ['updated_at', goTime(row.updated_at) ?? ZERO_TIME],
    ['banned_until', goTime(row.banned_until)],
    ['deleted_at', goTime(row.deleted_at)],
    ['is_anonymous', row.is_anonymous ?? false],
  ]);
}

export interface HookMetadata {
  uuid?: string;
  time?: string;
  name: string;
  ip_address?: string;
}

export function metadataObject(m: HookMetadata): GoStruct {
  return struct([
    ['uuid', m.uuid ?? crypto.randomUUID()],
    ['time', m.time ?? goTime(new Date())],
    ['name', m.name],
    ['ip_address', m.ip_address ?? '127.0.0.1'],
  ]);
}

/**
 * before-user-created for an email sign-up: an unsaved user
 * (docs/reference/auth-hooks.md#before-user-created).
 */
export function beforeUserCreatedBody(
  user: Partial<AuthUserRow> & { email?: string },
  meta: Partial<HookMetadata> = {},
): string {
  const row: AuthUserRow = {
    id: crypto.randomUUID(),
    aud: 'authenticated',
    role: '',
    raw_app_meta_data: { provider: 'email', providers: ['email'] },
    raw_user_meta_data: {},
    ...user,
  };
  return goJson(struct([
    ['metadata', metadataObject({ name: 'before-user-created', ...meta })],
    ['user', userObject(row)],
  ]));
}

export function afterUserCreatedBody(
  row: AuthUserRow,
  identities: unknown[] = [],
  meta: Partial<HookMetadata> = {},
): string {
  return goJson(struct([
    ['metadata', metadataObject({ name: 'after-user-created', ...meta })],
    ['user', userObject(row, identities)],
  ]));
}

export interface AccessTokenClaims {
  iss?: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  email: string;
  phone: string;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
  role: string;
  aal?: string;
  amr?: unknown[];
  session_id?: string;
  is_anonymous: boolean;
  client_id?: string;
  scope?: string;
}

/** AccessTokenClaims in struct order: jwt.RegisteredClaims first, then GoTrue's fields. */
export function claimsObject(c: AccessTokenClaims): GoStruct {
  return struct([
    ['iss', c.iss],
    ['sub', c.sub],
    ['aud', c.aud],
    ['exp', c.exp],
    ['iat', c.iat],
    ['email', c.email],
    ['phone', c.phone],
    ['app_metadata', c.app_metadata],
    ['user_metadata', c.user_metadata],
    ['role', c.role],
    ['aal', c.aal],
    ['amr', c.amr],
    ['session_id', c.session_id],
    ['is_anonymous', c.is_anonymous],
    ['client_id', c.client_id],
    ['scope', c.scope],
  ]);
}

/** Claims for a password login of `userId`, as GenerateAccessToken fills them. */
export function defaultClaims(userId: string, over: Partial<AccessTokenClaims> = {}) {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: 'http://127.0.0.1:54321/auth/v1',
    sub: userId,
    aud: 'authenticated',
    exp: iat + 3600,
    iat,
    email: 'someone@example.com',
    phone: '',
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    role: 'authenticated',
    aal: 'aal1',
    amr: [struct([['method', 'password'], ['timestamp', iat]])],
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    ...over,
  } satisfies AccessTokenClaims;
}

export function customAccessTokenBody(
  userId: string,
  claims: AccessTokenClaims,
  authenticationMethod = 'password',
  meta: Partial<HookMetadata> = {},
): string {
  return goJson(struct([
    ['metadata', metadataObject({ name: 'customize-access-token', ...meta })],
    ['user_id', userId],
    ['claims', claimsObject(claims)],
    ['authentication_method', authenticationMethod],
  ]));
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function secretBytes(secret: string): Uint8Array {
  // GoTrue: strip `v1,` then `whsec_`, base64-decode the rest
  // (docs/reference/hook-signatures.md#secret-format).
  const b64 = secret.replace(/^v1,/, '').replace(/^whsec_/, '');
  return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
}

/** `v1,<base64>` for one secret (any of `v1,whsec_…`, `whsec_…`, raw base64). */
export async function signature(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    secretBytes(secret) as Uint8Array<ArrayBuffer>,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await crypto.subtle.sign('HMAC', key, utf8.encode(`${id}.${timestamp}.${body}`));
  return `v1,${base64(new Uint8Array(mac))}`;
}

export interface SignOptions {
  /** The configured secrets as GoTrue holds them: `v1,whsec_…`, several joined by `|`. */
  secrets: string;
  id?: string;
  /** Unix seconds. */
  timestamp?: number;
}

/**
 * The headers GoTrue sends with a hook body (docs/reference/auth-hooks.md#transport), for one
 * attempt.
 */
export async function hookHeaders(
  body: string,
  opts: SignOptions,
): Promise<Record<string, string>> {
  const id = opts.id ?? crypto.randomUUID();
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const signatures = await Promise.all(
    opts.secrets.split('|').map((s) => signature(s, id, timestamp, body)),
  );
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(', '),
    'accept-encoding': 'identity',
  };
}

/** A complete hook request (POST, headers, body) for fetch or app.request(). */
export async function hookRequest(
  url: string,
  body: string,
  opts: SignOptions,
): Promise<Request> {
  return new Request(url, { method: 'POST', headers: await hookHeaders(body, opts), body });
}

/** A fresh secret in GoTrue's `v1,whsec_<base64 of 32 random bytes>` form. */
export function newHookSecret(): string {
  return `v1,whsec_${base64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** custom-access-token for a user's first token, with the claims GoTrue fills from the row. */
export function tokenHookBody(user: { id: string; email?: string | null }): string {
  return customAccessTokenBody(user.id, defaultClaims(user.id, { email: user.email ?? '' }));
}
