import { type Config, ConfigError } from '../config.ts';
import type { Gateway } from '../gateway.ts';

/**
 * The gateway the configuration asks for. `auto` (the default): the direct connection when
 * DATABASE_URL or SUPABASE_DB_URL is set (Supabase injects SUPABASE_DB_URL into every deployed
 * function, so that is what runs there), else supabase-js over SUPABASE_URL and the service key.
 * USER_SYNC_GATEWAY=supabase-js forces PostgREST. Each adapter is imported only when chosen,
 * so a cold start loads one driver.
 */
export async function createGateway(config: Config): Promise<Gateway> {
  const wantDirect = config.gateway === 'direct' ||
    (config.gateway === 'auto' && config.databaseUrl !== null);
  if (wantDirect) {
    if (!config.databaseUrl) {
      throw new ConfigError('USER_SYNC_GATEWAY=direct needs DATABASE_URL or SUPABASE_DB_URL.');
    }
    const { createDirectGateway, postgresExecutor } = await import('./direct.ts');
    return createDirectGateway(postgresExecutor(config.databaseUrl));
  }
  const { createSupabaseJsGateway, serviceKey } = await import('./supabase-js.ts');
  const key = serviceKey(config);
  if (!config.supabaseUrl || !key) {
    throw new ConfigError(
      'No database: set SUPABASE_DB_URL or DATABASE_URL, or SUPABASE_URL with ' +
        'SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY.',
    );
  }
  return createSupabaseJsGateway({ url: config.supabaseUrl, key });
}
