// The function's app on a test database, in process: createApp with the direct gateway, on
// postgres.js logging in as `postgres` (the role SUPABASE_DB_URL names on hosted) or on the
// PGlite executor. Requests go through app.request(), as a client's would.

import { afterAll, beforeAll } from 'vitest';
import { type App, createApp } from '../../shared/app.ts';
import { systemClock } from '../../shared/clock.ts';
import { parseConfig } from '../../shared/config.ts';
import type { Gateway } from '../../shared/gateway.ts';
import { createDirectGateway, postgresExecutor } from '../../shared/gateways/direct.ts';
import { pgliteExecutor } from '../../dev/pglite-executor.ts';
import { memoryLogger } from '../../dev/memory-logger.ts';
import type { TestDb } from './db.ts';

/** The direct gateway on this test database, as the function's own pool would reach it. */
export function gatewayFor(db: TestDb): Gateway {
  return createDirectGateway(
    db.kind === 'server' ? postgresExecutor(db.urlAs('postgres')) : pgliteExecutor(db.pglite),
  );
}

export interface DirectApp {
  app: App;
  gateway: Gateway;
  /** Every entry the app logged. */
  logger: ReturnType<typeof memoryLogger>;
}

/**
 * The app, configured from `env` by the real parseConfig, on the direct gateway to `db`: made
 * before this file's (or describe block's) tests, its pool closed after them. Its fields can be
 * used from inside any test or hook.
 */
export function useDirectApp(db: TestDb, env: Record<string, string | undefined>): DirectApp {
  const direct = { logger: memoryLogger() } as DirectApp;
  beforeAll(() => {
    direct.gateway = gatewayFor(db);
    direct.app = createApp({
      config: parseConfig(env),
      gateway: direct.gateway,
      clock: systemClock,
      logger: direct.logger,
    });
  });
  afterAll(async () => {
    await direct.gateway?.close?.();
  });
  return direct;
}
