// shared/signature.ts checks Standard Webhooks signatures with WebCrypto. It must accept and
// refuse exactly what the `standardwebhooks` library (which it replaced) accepts and refuses,
// with the same messages: the Standard Webhooks test vector, rotation, the ±5 minute window, and
// the
// library itself as the oracle over many generated headers.
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHookVerifier, SignatureError } from '../../shared/signature.ts';

// The Standard Webhooks reference libraries' own test vector.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const headers = (id: string, timestamp: string | number, signature: string) =>
  new Headers({
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature,
  });

/** The verifier's answer: 'ok' or the SignatureError message. */
async function outcome(secrets: string[], body: string, h: Headers): Promise<string> {
  try {
    await createHookVerifier(secrets).verify(body, h);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(SignatureError);
    return (err as Error).message;
  }
}

/** What the app answered with the library: its header check, then the loop over secrets. */
function libraryOutcome(secrets: string[], body: string, h: Headers): string {
  const wanted: Record<string, string> = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const value = h.get(name);
    if (value === null || value === '') return `Missing ${name} header`;
    wanted[name] = value;
  }
  let first: unknown;
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(body, wanted, { jsonParse: false });
      return 'ok';
    } catch (err) {
      first ??= err;
    }
  }
  return (first as Error).message;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('shared/signature.ts', () => {
  it('accepts the Standard Webhooks test vector and refuses it altered', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(VECTOR.timestamp * 1000);
    const h = headers(VECTOR.id, VECTOR.timestamp, VECTOR.signature);
    expect(await outcome([VECTOR.secret], VECTOR.payload, h)).toBe('ok');
    expect(await outcome([VECTOR.secret], VECTOR.payload + ' ', h)).toBe(
      'No matching signature found',
    );
    const otherId = headers(`${VECTOR.id}x`, VECTOR.timestamp, VECTOR.signature);
    expect(await outcome([VECTOR.secret], VECTOR.payload, otherId)).toBe(
      'No matching signature found',
    );
    const v2 = headers(VECTOR.id, VECTOR.timestamp, VECTOR.signature.replace('v1,', 'v2,'));
    expect(await outcome([VECTOR.secret], VECTOR.payload, v2)).toBe(
      'No matching signature found',
    );
  });

  it('keeps the ±5 minute window and its messages', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const at = (offset: number) => {
      vi.setSystemTime((VECTOR.timestamp + offset) * 1000);
      return outcome(
        [VECTOR.secret],
        VECTOR.payload,
        headers(VECTOR.id, VECTOR.timestamp, VECTOR.signature),
      );
    };
    expect(await at(300)).toBe('ok');
    expect(await at(-300)).toBe('ok');
    expect(await at(301)).toBe('Message timestamp too old');
    expect(await at(-301)).toBe('Message timestamp too new');
    vi.setSystemTime(VECTOR.timestamp * 1000);
    expect(
      await outcome([VECTOR.secret], VECTOR.payload, headers(VECTOR.id, 'soon', 'v1,x')),
    ).toBe('Invalid Signature Headers');
  });

  it('accepts any configured secret and any signature in the header (rotation)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(VECTOR.timestamp * 1000);
    const other = `whsec_${btoa('o'.repeat(32))}`;
    const theirs = new Webhook(other).sign(
      VECTOR.id,
      new Date(VECTOR.timestamp * 1000),
      VECTOR.payload,
    );
    // Supabase Auth joins one signature per secret with ", ".
    for (const signature of [`${theirs}, ${VECTOR.signature}`, `${VECTOR.signature}, ${theirs}`]) {
      const h = headers(VECTOR.id, VECTOR.timestamp, signature);
      expect(await outcome([VECTOR.secret], VECTOR.payload, h)).toBe('ok');
      expect(await outcome([other, VECTOR.secret], VECTOR.payload, h)).toBe('ok');
    }
    const onlyTheirs = headers(VECTOR.id, VECTOR.timestamp, theirs);
    expect(await outcome([VECTOR.secret], VECTOR.payload, onlyTheirs)).toBe(
      'No matching signature found',
    );
    expect(await outcome([VECTOR.secret, other], VECTOR.payload, onlyTheirs)).toBe('ok');
  });

  it('names a missing or empty header, as before', async () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const h = headers(VECTOR.id, VECTOR.timestamp, VECTOR.signature);
      h.delete(name);
      expect(await outcome([VECTOR.secret], VECTOR.payload, h)).toBe(`Missing ${name} header`);
      h.set(name, '');
      expect(await outcome([VECTOR.secret], VECTOR.payload, h)).toBe(`Missing ${name} header`);
    }
  });

  it('answers as the standardwebhooks library does for generated headers', async () => {
    const secrets = [VECTOR.secret, `whsec_${btoa('k'.repeat(32))}`];
    const now = Math.floor(Date.now() / 1000);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          id: fc.string({ minLength: 1, maxLength: 20 }),
          body: fc.string({ maxLength: 60 }),
          offset: fc.integer({ min: -400, max: 400 }),
          stamp: fc.oneof(
            fc.constant('n'),
            fc.constant('n9x'),
            fc.string({ minLength: 1, maxLength: 4 }),
          ),
          signers: fc.subarray([0, 1, 2]),
          extra: fc.constantFrom('', ' ', ', ', ' v1,', ' v2,abc', ' ,'),
          secretsUsed: fc.constantFrom([0], [1], [0, 1], [1, 0]),
        }),
        async ({ id, body, offset, stamp, signers, extra, secretsUsed }) => {
          const t = now + offset;
          const timestamp = stamp.replace('n', String(t));
          const all = [...secrets, `whsec_${btoa('z'.repeat(32))}`];
          const sigs = signers.map((i) => new Webhook(all[i]!).sign(id, new Date(t * 1000), body));
          const signature = sigs.join(', ') + extra || 'v1,';
          const h = headers(id, timestamp, signature);
          const used = secretsUsed.map((i) => secrets[i]!);
          expect(await outcome(used, body, h)).toBe(libraryOutcome(used, body, h));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compares in constant time and imports each key once', async () => {
    const { readFileSync } = await import('node:fs');
    const source = readFileSync('shared/signature.ts', 'utf8');
    // XOR-accumulated over the whole length; no early return inside the loop.
    expect(source).toMatch(/for \(let i = 0; i < a\.length; i\+\+\) diff \|= a\[i\]! \^ b\[i\]!;/);
    expect(source.match(/importKey\(/g)).toHaveLength(1);
    expect(source).toMatch(/const keys = secrets\.map\(secretKey\);/);
  });
});
