/**
 * Bearer tokens compared in constant time: both sides are hashed with SHA-256 first, so the
 * comparison always runs over 32 bytes whatever the lengths, and a mismatch position says
 * nothing about the secret.
 */
export function bearerToken(header: string | undefined | null): string | null {
  if (!header) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match?.[1] ?? null;
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

export async function timingSafeEqualText(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** True when `presented` equals one of `accepted` (every candidate is compared). */
export async function matchesAny(presented: string, accepted: readonly string[]): Promise<boolean> {
  let found = false;
  for (const candidate of accepted) {
    if (await timingSafeEqualText(presented, candidate)) found = true;
  }
  return found;
}
