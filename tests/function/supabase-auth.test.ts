import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import {
  beforeUserCreatedBody,
  goJson,
  goTime,
  hookHeaders,
  signature,
  struct,
} from '../helpers/supabase-auth.ts';

describe('tests/helpers/supabase-auth.ts signs like Supabase Auth', () => {
  // Vector 1 of docs/reference/hook-signatures.md#test-vectors.
  it('reproduces the Standard Webhooks reference vector', async () => {
    const sig = await signature(
      'v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      1614265330,
      '{"test": 2432232314}',
    );
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  // Vector 2 of docs/reference/hook-signatures.md#test-vectors.
  it('reproduces the GoTrue-shaped vector, body built field by field', async () => {
    const body = goJson(struct([
      [
        'metadata',
        struct([
          ['uuid', '8b34dcdd-9df1-4c10-850a-b3277c653040'],
          ['time', '2025-01-01T00:00:00Z'],
          ['name', 'before-user-created'],
          ['ip_address', '127.0.0.1'],
        ]),
      ],
      ['user', struct([['id', 'ff7fc9ae-3b1b-4642-9241-64adb9848a03']])],
    ]));
    expect(body).toBe(
      '{"metadata":{"uuid":"8b34dcdd-9df1-4c10-850a-b3277c653040","time":"2025-01-01T00:00:00Z",' +
        '"name":"before-user-created","ip_address":"127.0.0.1"},' +
        '"user":{"id":"ff7fc9ae-3b1b-4642-9241-64adb9848a03"}}',
    );
    expect(new TextEncoder().encode(body).length).toBe(197);
    const headers = await hookHeaders(body, {
      secrets: 'v1,whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
      id: '2f4b5a86-2a3d-4a8e-9d3c-1a2b3c4d5e6f',
      timestamp: 1735689600,
    });
    expect(headers['webhook-signature']).toBe('v1,90ESWlxYnLYVGDXSbB4NoX5n1LEF/N8NniR0fPr4v+Y=');
    expect(headers['webhook-id']).toBe('2f4b5a86-2a3d-4a8e-9d3c-1a2b3c4d5e6f');
    expect(headers['webhook-timestamp']).toBe('1735689600');
    expect(headers['content-type']).toBe('application/json');
  });

  it('joins one signature per secret with ", " and each verifies alone', async () => {
    const a = 'v1,whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
    const b = 'v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"x":1}';
    const headers = await hookHeaders(body, { secrets: `${a}|${b}` });
    const parts = headers['webhook-signature']!.split(', ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(
      await signature(a, headers['webhook-id']!, Number(headers['webhook-timestamp']), body),
    );
    expect(parts[1]).toBe(
      await signature(b, headers['webhook-id']!, Number(headers['webhook-timestamp']), body),
    );
    // The reference library accepts GoTrue's header (it splits on spaces).
    expect(new Webhook(b.slice(3)).verify(body, headers)).toEqual({ x: 1 });
  });

  it('makes a new webhook-id per attempt', async () => {
    const secrets = 'v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const one = await hookHeaders('{}', { secrets });
    const two = await hookHeaders('{}', { secrets });
    expect(one['webhook-id']).not.toBe(two['webhook-id']);
    expect(one['webhook-id']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it("escapes like Go's encoder and sorts map keys by bytes", () => {
    expect(goJson({ b: 1, a: '<a href="x">&</a>\u2028\u2029', '10': 0, '9': 0, é: 0, z: 0 }))
      .toBe(
        '{"10":0,"9":0,"a":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e\\u2028\\u2029",' +
          '"b":1,"z":0,"é":0}',
      );
    expect(goJson(struct([['z', 1], ['a', undefined], ['m', null]]))).toBe('{"z":1,"m":null}');
  });

  it("formats times like Go's time.Time", () => {
    expect(goTime('2024-05-14 12:56:33.824230+00')).toBe('2024-05-14T12:56:33.82423Z');
    expect(goTime('2024-05-14T12:56:33+00:00')).toBe('2024-05-14T12:56:33Z');
    expect(goTime(new Date('2024-05-14T12:56:33.100Z'))).toBe('2024-05-14T12:56:33.1Z');
    expect(goTime(null)).toBeUndefined();
  });

  it('builds a before-user-created body in GoTrue field order', () => {
    const body = beforeUserCreatedBody(
      { id: 'ff7fc9ae-3b1b-4642-9241-64adb9848a03', email: 'a@example.com' },
      { uuid: '8b34dcdd-9df1-4c10-850a-b3277c653040', time: '2025-01-01T00:00:00Z' },
    );
    expect(body).toBe(
      '{"metadata":{"uuid":"8b34dcdd-9df1-4c10-850a-b3277c653040","time":"2025-01-01T00:00:00Z",' +
        '"name":"before-user-created","ip_address":"127.0.0.1"},"user":{' +
        '"id":"ff7fc9ae-3b1b-4642-9241-64adb9848a03","aud":"authenticated","role":"",' +
        '"email":"a@example.com","phone":"",' +
        '"app_metadata":{"provider":"email","providers":["email"]},"user_metadata":{},' +
        '"identities":[],"created_at":"0001-01-01T00:00:00Z",' +
        '"updated_at":"0001-01-01T00:00:00Z","is_anonymous":false}}',
    );
  });
});
