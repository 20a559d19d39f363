// `npm start`: the user-sync function under Node on
// http://127.0.0.1:$PORT/functions/v1/user-sync/... (the URL shape of a local Supabase stack),
// with the direct gateway on DATABASE_URL, or on an embedded PGlite database (roles, auth
// stand-in and migrations applied, kept in USER_SYNC_PGLITE_DIR, default .data/pglite) when
// DATABASE_URL is unset. PORT defaults to 54321, the local Supabase API port; 0 picks one.

import { createApp } from '../shared/app.ts';
import { systemClock } from '../shared/clock.ts';
import { ConfigError, parseConfig } from '../shared/config.ts';
import { createGateway } from '../shared/gateways/from-config.ts';
import { jsonLogger } from '../shared/logger.ts';
import { curlExample, openPglite, pgliteGateway, serve, withDevSecrets } from './server.ts';

/** The local Supabase stack's API port, where its functions are served. */
const LOCAL_API_PORT = 54321;

async function main(): Promise<void> {
  const { env, generated } = withDevSecrets(process.env);
  const config = parseConfig(env);
  const port = config.port ?? LOCAL_API_PORT;
  const pgliteDir = env.USER_SYNC_PGLITE_DIR || '.data/pglite';

  const gateway = config.databaseUrl || config.gateway === 'supabase-js'
    ? await createGateway(config)
    : pgliteGateway(await openPglite(pgliteDir, (file) => console.error(`applying ${file}`)));
  const app = createApp({ config, gateway, clock: systemClock, logger: jsonLogger() });
  const serving = await serve(app, port);

  const db = config.databaseUrl
    ? 'DATABASE_URL'
    : config.gateway === 'supabase-js'
    ? 'SUPABASE_URL (supabase-js)'
    : `embedded PGlite in ${pgliteDir}`;
  const lines = [`user-sync listening on ${serving.base} (database: ${db})`];
  if (generated.length) {
    lines.push('', 'Generated for this run only (set them in the environment to keep them):');
    lines.push(...generated.map((g) => `  ${g}`));
    lines.push('', 'Try a signed before-user-created call (asks for admin, so it is refused):');
    lines.push(curlExample(serving.base, env.AUTH_HOOK_SECRET!));
  }
  const tokenGenerated = generated.some((g) => g.startsWith('USER_SYNC_ADMIN_TOKEN='));
  lines.push('', 'Check for drift (the resync CLI reads the token from USER_SYNC_ADMIN_TOKEN):');
  lines.push(
    `  ${tokenGenerated ? 'USER_SYNC_ADMIN_TOKEN=<the token above> ' : ''}` +
      `npm run resync -- --url ${serving.base} --dry-run`,
  );
  lines.push('', 'Every sign-up path, end to end, on a throw-away database: npm run demo');
  console.error(lines.join('\n'));

  const stop = () => {
    void serving.close().then(() => gateway.close?.()).finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
