// fast-check generators for hostile input: bytes, strings, JSON, deep nesting, wrong types,
// invalid UUIDs, SQL and unicode, and mutations of the payloads Supabase Auth really sends.

import fc from 'fast-check';

/** Strings people use to break parsers, SQL, logs and role checks. */
export const NASTY_STRINGS = [
  '',
  ' ',
  'null',
  'undefined',
  'false',
  'true',
  '0',
  '-1',
  'NaN',
  '[]',
  '{}',
  "'; drop table public.users; --",
  "admin'--",
  "') or ('1'='1",
  '$$; select pg_sleep(10); $$',
  "E'\\x00'",
  '%s%s%s%n',
  '${jndi:ldap://127.0.0.1/a}',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '\\u0000',
  '\u202eadmin',
  'ａｄｍｉｎ',
  '𝕒𝕕𝕞𝕚𝕟',
  'Admin',
  'ADMIN',
  'admin ',
  ' admin',
  'admin\n',
  'adm\u200bin',
  '\u0430dmin', // Cyrillic a
  'client,admin',
  '🦄'.repeat(50),
  'é'.normalize('NFD'),
  '\ud83d\ude00\u0301\u0301\u0301',
  'x'.repeat(5000),
];

export const ROLE_LOOKALIKES = [
  'admin',
  'Admin',
  'ADMIN',
  'admin ',
  ' admin',
  'admin\n',
  'ａｄｍｉｎ',
  '\u0430dmin',
  'adm\u200bin',
  'superuser',
  'service_role',
  'postgres',
  'supabase_admin',
  'client ',
  'Client',
];

export const INVALID_UUIDS = [
  '',
  'null',
  'not-a-uuid',
  '00000000-0000-0000-0000-00000000000',
  '00000000-0000-0000-0000-0000000000000',
  '{00000000-0000-0000-0000-000000000000}',
  '00000000000000000000000000000000',
  'g0000000-0000-0000-0000-000000000000',
  "00000000-0000-0000-0000-000000000000'; --",
  '00000000-0000-0000-0000-000000000000\n',
  ' 00000000-0000-0000-0000-000000000000',
  '０0000000-0000-0000-0000-000000000000',
];

/** Strings of any code point except NUL (jsonb cannot store U+0000, so Auth never sends it). */
export const unicodeText = (maxLength = 200) =>
  fc.string({ unit: 'binary', maxLength }).map((s) => s.replaceAll('\u0000', ''));

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: unicodeText() },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

/** `[[[…]]]` or `{"a":{"a":…}}` nested `depth` deep, as text (JSON.parse is iterative in V8). */
export function nestedJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

export function nestedValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/**
 * Deep nesting under the default 256 KiB body limit (oversize is its own case). Unread bodies
 * must stay well under it too: see the KNOWN BUG test in hostile-input.test.ts.
 */
export const deepNesting = (maxDepth = 40_000) =>
  fc.record({
    depth: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1000, max: maxDepth })),
    kind: fc.constantFrom('array' as const, 'object' as const),
  }).map(({ depth, kind }) => nestedJson(depth, kind));

/** Values of every JSON type, hostile strings included, and some deep nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 3, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_UUIDS) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      0,
      -1,
      1e308,
      -1e308,
      Number.MAX_SAFE_INTEGER + 2,
      0.5,
      true,
      false,
      null,
      [],
      {},
    ),
  },
  {
    weight: 1,
    // Shallow enough for fast-check to print a counterexample; deeper nesting is sent as text.
    arbitrary: fc.integer({ min: 1, max: 300 }).map((d) => nestedValue(d)),
  },
);

/** Any body: raw bytes, text, JSON of any shape, deep nesting, or nothing. */
export const hostileBody: fc.Arbitrary<Uint8Array | string | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  { weight: 2, arbitrary: unicodeText(500) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
  // At most ~50 KB: bodies the app may answer without reading (see deepNesting).
  { weight: 1, arbitrary: deepNesting(8000) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      undefined,
      '',
      ' ',
      'null',
      '{}',
      '[]',
      '"x"',
      '{"',
      '\u00ef\u00bb\u00bf{}',
      '\ufeff{}',
      '{"dry_run":true}',
    ),
  },
);

export const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  '*/*',
  'application/json, text/plain',
  'garbage',
];

/**
 * Authorization header values: the empty and falsy ones the issue lists, malformed schemes,
 * and unicode. Callers add near-misses of the real secrets.
 */
export const BEARER_ATTEMPTS = [
  '',
  ' ',
  'null',
  'false',
  'true',
  'undefined',
  '0',
  'Bearer',
  'Bearer ',
  'Bearer  ',
  'Bearer null',
  'Bearer false',
  'Bearer undefined',
  'Bearer ""',
  "Bearer ''",
  'Bearer []',
  'Bearer {}',
  'Bearer *',
  'Bearer %',
  'Bearer \t',
  'Basic dXNlcjpwYXNz',
  'Token abc',
  'Bearer a b',
  'Bearer Bearer',
  'bearer',
  'BEARER',
  'Bearer 🦄',
  'Bearer ａｄｍｉｎ',
  'Bearer \u00e9\u00e8',
];
