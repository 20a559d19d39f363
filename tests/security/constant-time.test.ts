// Secrets are compared in constant time: bearer tokens through shared/bearer.ts (both sides
// hashed to 32 bytes, every byte compared, every candidate tried), hook signatures by
// shared/signature.ts's timingSafeEqual (every byte XORed, every secret tried). Timing itself is too noisy to assert on a shared
// machine, so these pin the properties that make it constant, and that no route compares a
// secret any other way.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { matchesAny, timingSafeEqualText } from '../../shared/bearer.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('constant-time comparison of secrets', () => {
  it('timingSafeEqualText is exact for equal, unequal, prefix, longer, empty and unicode inputs', async () => {
    const secret = 'sec-admin-token-4e8b2a6c9d1f3e57';
    expect(await timingSafeEqualText(secret, secret)).toBe(true);
    for (
      const other of [
        '',
        secret.slice(0, -1),
        `${secret}x`,
        secret.toUpperCase(),
        `${secret.slice(0, -1)}8`,
        'ａｄｍｉｎ',
        '\u0000'.repeat(32),
      ]
    ) {
      expect({ other, equal: await timingSafeEqualText(other, secret) }).toEqual({
        other,
        equal: false,
      });
    }
    expect(await timingSafeEqualText('🦄', '🦄')).toBe(true);
  });

  it('every comparison hashes both sides to 32 bytes, whatever their lengths (no early exit on length)', async () => {
    const digest = vi.spyOn(crypto.subtle, 'digest');
    for (const presented of ['', 'x', 'x'.repeat(10_000)]) {
      digest.mockClear();
      await timingSafeEqualText(presented, 'the-configured-secret-0123456789');
      expect(digest).toHaveBeenCalledTimes(2);
      for (const call of digest.mock.calls) expect(call[0]).toBe('SHA-256');
    }
  });

  it('matchesAny tries every accepted token even when the first one matches', async () => {
    const digest = vi.spyOn(crypto.subtle, 'digest');
    const accepted = ['token-a-0123456789abcdef', 'token-b-0123456789abcdef', 'token-c-012345678'];
    expect(await matchesAny(accepted[0]!, accepted)).toBe(true);
    expect(digest).toHaveBeenCalledTimes(2 * accepted.length);
    digest.mockClear();
    expect(await matchesAny('nope', accepted)).toBe(false);
    expect(digest).toHaveBeenCalledTimes(2 * accepted.length);
  });

  it('no route compares a secret with ===, includes() or startsWith(): only the constant-time helpers', () => {
    for (const file of ['webhook.ts', 'resync.ts', 'hooks.ts']) {
      const source = readFileSync(`shared/routes/${file}`, 'utf8');
      const lines = source.split('\n').filter((line) =>
        /(secret|token|presented|signature|accepted)/i.test(line) &&
        /(===|!==|==[^=]|\.includes\(|\.startsWith\(|\.indexOf\()/.test(line) &&
        !/presented === null|\.length === 0/.test(line)
      );
      expect({ file, lines }).toEqual({ file, lines: [] });
    }
    expect(readFileSync('shared/routes/webhook.ts', 'utf8')).toContain('timingSafeEqualText(');
    expect(readFileSync('shared/routes/resync.ts', 'utf8')).toContain('matchesAny(');
  });

  it('hook signatures are compared by shared/signature.ts timingSafeEqual: XOR over every byte, no return inside the loop', () => {
    const source = readFileSync('shared/signature.ts', 'utf8');
    const fn = source.match(/function timingSafeEqual\([^)]*\): boolean \{([\s\S]*?)\n\}/);
    expect(fn, 'timingSafeEqual is defined in shared/signature.ts').not.toBeNull();
    const body = fn![1]!;
    // The loop is one statement: the XOR, with nothing that could leave it early.
    const loop = body.match(/for \(let i = 0; i < a\.length; i\+\+\) ([^;{]*);/);
    expect(loop?.[1]).toBe('diff |= a[i]! ^ b[i]!');
    expect(body.match(/return/g)).toHaveLength(2); // the length check, and the end
    // The only comparison of a presented signature is through it.
    const compared = source.split('\n').filter((line) =>
      /signature\b[^(]*(===|!==)|(===|!==)\s*(signature|expected)\b/.test(line)
    );
    expect(compared).toEqual([]);
    expect(source).toMatch(/timingSafeEqual\(utf8\.encode\(signature \?\? ''\), expected\)/);
  });
});
