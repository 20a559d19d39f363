// The deployed entry: parse the environment, build the app, serve. Everything else is in
// ../../../shared (runtime-neutral); the Supabase CLI bundles it when deploying from the
// repository root.
import { createApp } from '../../../shared/app.ts';
import { systemClock } from '../../../shared/clock.ts';
import { parseConfig } from '../../../shared/config.ts';
import { createGateway } from '../../../shared/gateways/from-config.ts';
import { jsonLogger } from '../../../shared/logger.ts';

const config = parseConfig(Deno.env.toObject());
const gateway = await createGateway(config);
const app = createApp({ config, gateway, clock: systemClock, logger: jsonLogger() });

// PORT matters only outside the platform (tests, a local run); the edge runtime ignores it.
Deno.serve({ port: config.port ?? 8000 }, app.fetch);
