import type { Clock } from '../../shared/clock.ts';
import { type Config, parseConfig } from '../../shared/config.ts';
import { type Gateway, GatewayError, type RpcOptions } from '../../shared/gateway.ts';
import { memoryLogger } from '../../dev/memory-logger.ts';
import { createApp } from '../../shared/app.ts';

export interface RecordedCall {
  fn: string;
  args: Record<string, unknown>;
  options: RpcOptions | undefined;
}

type Answer = (call: RecordedCall) => unknown;

/** A Gateway that records calls and answers from a script: for routing and auth tests only. */
export class FakeGateway implements Gateway {
  calls: RecordedCall[] = [];
  pings = 0;
  pingError: Error | null = null;
  private answers: Answer[] = [];
  private fallback: Answer = () => ({});

  /** Answers the next calls in order; a thrown or returned Error is thrown. */
  answer(...answers: Answer[]): this {
    this.answers.push(...answers);
    return this;
  }

  always(answer: Answer): this {
    this.fallback = answer;
    return this;
  }

  rpc<T>(fn: string, args: Record<string, unknown>, options?: RpcOptions): Promise<T> {
    const call = { fn, args, options };
    this.calls.push(call);
    const answer = this.answers.shift() ?? this.fallback;
    try {
      const value = answer(call);
      return value instanceof Error ? Promise.reject(value) : Promise.resolve(value as T);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  ping(): Promise<void> {
    this.pings++;
    return this.pingError ? Promise.reject(this.pingError) : Promise.resolve();
  }
}

export const unavailable = () =>
  new GatewayError('unavailable', 'connect ECONNREFUSED', 'ECONNREFUSED');

/** A clock whose sleep advances time instantly. */
export function fakeClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
    advance: (ms) => void (now += ms),
  };
}

export const HOOK_SECRET = 'v1,whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
export const OLD_HOOK_SECRET = 'v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const SERVICE_ROLE_KEY = 'eyJhbGciOiJIUzI1NiJ9.service-role.sig';
export const SECRET_KEY = 'sb_secret_0123456789abcdefghij';

export const baseEnv = {
  AUTH_HOOK_SECRET: HOOK_SECRET,
  USER_SYNC_WEBHOOK_SECRET: WEBHOOK_SECRET,
  USER_SYNC_ADMIN_TOKEN: ADMIN_TOKEN,
  SUPABASE_URL: 'http://127.0.0.1:54321',
  SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
};

export function testApp(
  env: Record<string, string | undefined> = baseEnv,
  overrides: { config?: Partial<Config>; clock?: Clock } = {},
) {
  const gateway = new FakeGateway();
  const logger = memoryLogger();
  const clock = overrides.clock ?? fakeClock();
  const config = { ...parseConfig(env), ...overrides.config };
  const app = createApp({ config, gateway, clock, logger });
  return { app, gateway, logger, clock, config };
}

export const BASE = 'http://localhost/user-sync';

/** The claims Supabase Auth requires in a custom access token hook's answer (docs/reference/auth-hooks.md#custom-access-token). */
export const REQUIRED_CLAIMS = [
  'aud',
  'exp',
  'iat',
  'sub',
  'email',
  'phone',
  'role',
  'aal',
  'session_id',
  'is_anonymous',
] as const;

/** Every route that takes a secret: a hook signature or a bearer token. */
export const PROTECTED_PATHS = [
  '/hooks/before-user-created',
  '/hooks/after-user-created',
  '/hooks/custom-access-token',
  '/webhooks/auth-users',
  '/resync',
] as const;
