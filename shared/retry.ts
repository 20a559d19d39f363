import type { Clock } from './clock.ts';
import { type Gateway, GatewayError } from './gateway.ts';

export interface RetryPolicy {
  /** Total time for all attempts, measured from the first. */
  budgetMs: number;
  /** Upper bound for one attempt (cut to what is left of the budget). */
  attemptTimeoutMs: number;
  /** Pause between attempts. */
  backoffMs: number;
}

/**
 * Calls `fn` and retries only when the database could not be reached ('unavailable'), while the
 * budget allows another attempt. Other errors, and the last 'unavailable', are thrown.
 */
export async function rpcWithRetry<T>(
  gateway: Gateway,
  clock: Clock,
  fn: string,
  args: Record<string, unknown>,
  policy: RetryPolicy,
): Promise<{ result: T; attempts: number }> {
  const deadline = clock.now() + policy.budgetMs;
  for (let attempts = 1;; attempts++) {
    const left = deadline - clock.now();
    try {
      const timeoutMs = Math.max(1, Math.min(policy.attemptTimeoutMs, left));
      return { result: await gateway.rpc<T>(fn, args, { timeoutMs }), attempts };
    } catch (err) {
      const retryable = err instanceof GatewayError && err.kind === 'unavailable';
      // Retry only if a pause plus a useful attempt (at least 200 ms) still fits.
      if (!retryable || deadline - clock.now() < policy.backoffMs + 200) {
        throw err;
      }
      await clock.sleep(policy.backoffMs);
    }
  }
}
