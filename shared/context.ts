import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Gateway } from './gateway.ts';
import type { Logger } from './logger.ts';

export interface AppDeps {
  config: Config;
  gateway: Gateway;
  clock: Clock;
  logger: Logger;
}

/** Per-request values the routes set for the request log line. */
export interface AppEnv {
  Variables: {
    requestId: string;
    userId?: string;
    /** What happened, in a word: allowed, rejected, synced, deferred, ignored, … */
    outcome?: string;
    /** Extra value-free detail for the log line (an error kind, a SQL action). */
    detail?: string;
  };
}
