// The direct gateway's pool through connection loss: pg_terminate_backend on its connections and
// database restarts, with calls in flight. postgres.js 3.4.9 used to end this with an uncaught
// TypeError from a setImmediate (the process dies) or a pool that never answered again; see
// unlessConnectionLost and postgresExecutor in shared/gateways/direct.ts.
//
// Server only, on a private cluster (cluster.ts): the restarts must not touch the run's cluster.

import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../shared/gateway.ts';
import { createDirectGateway, postgresExecutor } from '../../shared/gateways/direct.ts';
import { type FaultableDatabase, faultableDatabase } from './cluster.ts';

const SERVER = Boolean(process.env.DATABASE_URL);
const CALLERS = 12;
const ROUNDS = 4;
const RECOVERY_BOUND_MS = 5000;

let db: FaultableDatabase;
let admin: Sql;
let gateway: Gateway;
const escaped: string[] = [];
const onEscape = (error: unknown) => void escaped.push(String(error).slice(0, 200));

beforeAll(async () => {
  if (!SERVER) return;
  ({ db } = await faultableDatabase());
  admin = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
  // As the function connects on hosted: `postgres`, the role behind SUPABASE_DB_URL.
  gateway = createDirectGateway(postgresExecutor(db.urlAs('postgres')));
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
}, 120_000);

afterAll(async () => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  await gateway?.close?.();
  await admin?.end({ timeout: 5 });
  await db?.close();
});

describe.skipIf(!SERVER)('direct gateway through lost connections (server only)', () => {
  it(
    `${CALLERS} callers through ${ROUNDS} rounds of terminated connections and restarts`,
    async () => {
      let stop = false;
      let answered = 0;
      const callers = Array.from({ length: CALLERS }, async () => {
        while (!stop) {
          try {
            await gateway.rpc('resync_users', {
              p_dry_run: true,
              p_user_ids: [crypto.randomUUID()],
            }, {
              timeoutMs: 1500,
            });
            answered++;
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      });
      const recovered: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        await new Promise((r) => setTimeout(r, 400));
        if (round % 2 === 0) {
          await admin.unsafe(
            `select pg_terminate_backend(pid) from pg_stat_activity
            where application_name = 'user-sync'`,
          );
        } else {
          await db.restart();
        }
        const end = performance.now();
        for (;;) {
          try {
            await gateway.ping({ timeoutMs: 1000 });
            recovered.push(Math.round(performance.now() - end));
            break;
          } catch {
            if (performance.now() - end > RECOVERY_BOUND_MS * 2) {
              recovered.push(Number.POSITIVE_INFINITY);
              break;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
      stop = true;
      await Promise.all(callers);
      console.log(
        `direct gateway on ${db.kind}: ${answered} calls answered; recovered after each fault in ` +
          `${recovered.join(', ')} ms`,
      );
      expect(escaped).toEqual([]);
      for (const ms of recovered) expect(ms).toBeLessThan(RECOVERY_BOUND_MS);
      expect(answered).toBeGreaterThan(0);
    },
    60_000,
  );
});
