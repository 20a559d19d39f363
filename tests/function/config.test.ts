import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../shared/config.ts';
import { HOOK_SECRET, OLD_HOOK_SECRET } from './fakes.ts';

function failure(env: Record<string, string>): string {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('parseConfig accepted the environment');
}

describe('parseConfig', () => {
  it('has no usable secret by default', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      authHookSecrets: null,
      webhookSecret: null,
      adminToken: null,
      serviceRoleKey: null,
      secretKeys: [],
      databaseUrl: null,
      bodyLimitBytes: 256 * 1024,
      resyncBudgetMs: 50_000,
    });
  });

  it('splits AUTH_HOOK_SECRET on "|" and removes the v1, prefix', () => {
    const config = parseConfig({ AUTH_HOOK_SECRET: `${OLD_HOOK_SECRET}|${HOOK_SECRET}` });
    expect(config.authHookSecrets).toEqual([OLD_HOOK_SECRET.slice(3), HOOK_SECRET.slice(3)]);
  });

  it.each([
    ['without v1,', HOOK_SECRET.slice(3)],
    ['comma-separated (the docs are wrong about commas)', `${OLD_HOOK_SECRET},${HOOK_SECRET}`],
    ['too short', 'v1,whsec_abc'],
    ['an asymmetric key', 'v1a,whpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
  ])('refuses an AUTH_HOOK_SECRET %s, naming the variable but not the value', (_n, value) => {
    const message = failure({ AUTH_HOOK_SECRET: value });
    expect(message).toContain('AUTH_HOOK_SECRET');
    expect(message).toContain('v1,whsec_<base64>');
    expect(message).not.toContain(value);
  });

  it('treats empty values as unset', () => {
    expect(parseConfig({ AUTH_HOOK_SECRET: '', USER_SYNC_ADMIN_TOKEN: '  ' })).toMatchObject({
      authHookSecrets: null,
      adminToken: null,
    });
  });

  it('refuses short tokens', () => {
    const message = failure({ USER_SYNC_WEBHOOK_SECRET: 'short' });
    expect(message).toContain('USER_SYNC_WEBHOOK_SECRET: must be at least 16 characters');
    expect(message).not.toContain('short"');
  });

  it('reads SUPABASE_SECRET_KEYS as a JSON dictionary, default first', () => {
    const config = parseConfig({
      SUPABASE_SECRET_KEYS: '{"other":"sb_secret_two","default":"sb_secret_one"}',
    });
    expect(config.secretKeys).toEqual(['sb_secret_one', 'sb_secret_two']);
    expect(failure({ SUPABASE_SECRET_KEYS: 'sb_secret_plain' })).toContain('SUPABASE_SECRET_KEYS');
    expect(failure({ SUPABASE_SECRET_KEYS: '{"default":1}' })).toContain('SUPABASE_SECRET_KEYS');
  });

  it('prefers DATABASE_URL over SUPABASE_DB_URL and checks the scheme', () => {
    expect(
      parseConfig({
        DATABASE_URL: 'postgres://a@localhost/x',
        SUPABASE_DB_URL: 'postgresql://b@db/y',
      }).databaseUrl,
    ).toBe('postgres://a@localhost/x');
    expect(parseConfig({ SUPABASE_DB_URL: 'postgresql://b@db/y' }).databaseUrl).toBe(
      'postgresql://b@db/y',
    );
    const message = failure({ DATABASE_URL: 'mysql://root:hunter2@db/x' });
    expect(message).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL');
    expect(message).not.toContain('hunter2');
  });

  it('lists every malformed variable at once', () => {
    const message = failure({ SUPABASE_URL: 'not a url', USER_SYNC_RESYNC_BUDGET_MS: '5s' });
    expect(message).toContain('SUPABASE_URL');
    expect(message).toContain('USER_SYNC_RESYNC_BUDGET_MS: must be a whole number');
  });

  it('reads PORT as a port number, unset as null, and refuses anything else', () => {
    expect(parseConfig({}).port).toBeNull();
    expect(parseConfig({ PORT: '0' }).port).toBe(0);
    expect(parseConfig({ PORT: '54321' }).port).toBe(54321);
    for (const bad of ['65536', '-1', '80.5', 'http', '1e3']) {
      expect(failure({ PORT: bad }), bad).toContain('PORT: must be a port number (0 to 65535)');
    }
  });
});
