// Part 3: the two syncing hooks over HTTP against the deployed Deno entry (direct gateway on the
// server), against two ceilings measured in the same run: a bare Deno.serve answering the same
// JSON (HTTP) and public.sync_user called through the same gateway code and driver (database).

import autocannon, { type AutocannonRequest } from 'autocannon';
import type { Sql } from 'postgres';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  afterUserCreatedBody,
  type AuthUserRow,
  hookHeaders,
  newHookSecret,
  tokenHookBody,
} from '../dev/auth/supabase-auth.ts';
import {
  benchSql,
  codeRoot,
  connect,
  createScratch,
  migrationsNote,
  withDatabase,
} from './lib/db.ts';
import { benchScript, type DenoProcess, ENTRY, startDeno } from './lib/deno.ts';
import {
  fmt,
  median,
  type PartResult,
  partResult,
  percentile,
  ratio,
  type Table,
  type Target,
} from './lib/report.ts';

export interface HooksOptions {
  durationS: number;
  concurrency: number[];
  /** Auth users the requests are spread over. */
  users: number;
  /** Each measurement is repeated, interleaved with its ceilings; medians are reported. */
  rounds: number;
}

const HOOKS = ['custom-access-token', 'after-user-created'] as const;
type Hook = (typeof HOOKS)[number];

interface Rate {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Signed requests, one per user, as Supabase Auth sends them (fresh timestamps). */
export async function signedPool(hook: Hook, rows: AuthUserRow[], secret: string) {
  return await Promise.all(rows.map(async (row) => {
    const body = hook === 'custom-access-token' ? tokenHookBody(row) : afterUserCreatedBody(row);
    return { body, headers: await hookHeaders(body, { secrets: secret }) };
  }));
}

export async function load(
  base: string,
  path: string,
  pool: { body: string; headers: Record<string, string> }[],
  connections: number,
  durationS: number,
): Promise<Rate> {
  let next = 0;
  const requests: AutocannonRequest[] = [{
    method: 'POST',
    path,
    setupRequest: (request) => ({ ...request, ...pool[next++ % pool.length]! }),
  }];
  // Warm-up at the same concurrency (connections opened, code paths compiled).
  await autocannon({ url: base, connections, duration: Math.min(1, durationS), requests });
  const r = await autocannon({
    url: base,
    connections,
    duration: durationS,
    requests,
    timeout: 10,
  });
  return {
    rps: r['2xx'] / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

/** `concurrency` callers issuing `call` back to back for durationS; rate and latency. */
async function callRate(
  concurrency: number,
  durationS: number,
  call: (i: number) => Promise<unknown>,
): Promise<Rate> {
  const run = async (seconds: number) => {
    const latencies: number[] = [];
    let errors = 0;
    let i = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await call(i++);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }));
    return {
      rps: latencies.length / ((performance.now() - started) / 1000),
      p50: median(latencies),
      p99: percentile(latencies, 99),
      errors,
    };
  };
  await run(Math.min(1, durationS));
  return await run(durationS);
}

export async function hooks(opts: HooksOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const scratch = await createScratch(await benchSql('resync.sql'));
  const db = await scratch.clone('hooks');
  const admin = connect(db.url);
  const secret = newHookSecret();
  const procs: DenoProcess[] = [];
  let authSql: Sql | undefined;
  // The function's own gateway code, from the code measured (the working tree or --ref).
  const direct: typeof import('../shared/gateways/direct.ts') = await import(
    pathToFileURL(join(codeRoot(), 'shared/gateways/direct.ts')).href
  );
  const gateway = direct.createDirectGateway(direct.postgresExecutor(db.url));
  const results = new Map<string, Rate[]>();
  const record = (k: string, r: Rate) => results.set(k, [...(results.get(k) ?? []), r]);
  /** The median of the rounds (errors summed); undefined when never measured. */
  const get = (k: string): Rate | undefined => {
    const rs = results.get(k);
    if (!rs) return undefined;
    return {
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  };
  const key = (what: string, hook: string, c: number) => `${what}|${hook}|${c}`;
  try {
    await admin.unsafe('set session_replication_role = replica');
    await admin.unsafe(`call bench.load_users(${opts.users})`);
    await admin.unsafe('set session_replication_role = origin');
    // The rows exist, as the trigger would have written them: the hooks find them in sync.
    await admin.unsafe('select public.resync_users()');
    await admin.unsafe('vacuum analyze auth.users, public.users');
    const rows = await admin<AuthUserRow[]>`select * from auth.users order by id`;
    const ids = rows.map((r) => r.id);

    const fn = await startDeno(ENTRY, {
      DATABASE_URL: db.url,
      AUTH_HOOK_SECRET: secret,
    }, '/user-sync/health');
    procs.push(fn);
    const bare = await startDeno(benchScript('bare-server.ts'), {}, '/health');
    procs.push(bare);

    // The answer is right before it is fast.
    const [probe] = await signedPool('custom-access-token', rows.slice(0, 1), secret);
    const res = await fetch(`http://127.0.0.1:${fn.port}/user-sync/hooks/custom-access-token`, {
      method: 'POST',
      headers: probe!.headers,
      body: probe!.body,
    });
    const answer = await res.json() as { claims?: { user_role?: string } };
    if (res.status !== 200 || !answer.claims?.user_role) {
      throw new Error(`custom-access-token answered ${res.status} ${JSON.stringify(answer)}`);
    }

    if (scratch.features.sqlHook) {
      authSql = connect(withDatabase(db.url, db.name, 'supabase_auth_admin'), {
        max: 3,
        prepare: false,
      });
    }
    const sqlHookBodies = scratch.features.sqlHook
      ? (await signedPool('custom-access-token', rows, secret)).map((r) => r.body)
      : [];

    // Every figure and its ceilings are measured in turn, round after round, so that what else
    // the machine is doing weighs on all of them alike; medians are reported.
    for (const c of opts.concurrency) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const hook of HOOKS) {
          const path = `/user-sync/hooks/${hook}`;
          for (const [what, port] of [['http', bare.port], ['fn', fn.port]] as const) {
            record(
              key(what, hook, c),
              await load(
                `http://127.0.0.1:${port}`,
                path,
                await signedPool(hook, rows, secret),
                c,
                opts.durationS,
              ),
            );
          }
          console.error(
            `hooks ${hook} c=${c} round ${round + 1}: function ` +
              `${fmt(results.get(key('fn', hook, c))!.at(-1)!.rps)} req/s, bare ` +
              `${fmt(results.get(key('http', hook, c))!.at(-1)!.rps)} req/s`,
          );
        }
        // Both hooks make the same database call: one ceiling serves both.
        record(
          key('db', 'sync_user', c),
          await callRate(
            c,
            opts.durationS,
            (i) =>
              gateway.rpc('sync_user', { p_user_id: ids[i % ids.length] }, { timeoutMs: 1500 }),
          ),
        );
        if (authSql) {
          const sql = authSql;
          record(
            key('sqlhook', 'custom-access-token', c),
            await callRate(c, opts.durationS, (i) =>
              sql.begin(async (tx) => {
                await tx.unsafe(`set local statement_timeout = '2000'`);
                await tx.unsafe('select "public"."hook_custom_access_token"($1::jsonb)', [
                  sqlHookBodies[i % sqlHookBodies.length]!,
                ]);
              })),
          );
        }
      }
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await gateway.close?.();
    await authSql?.end({ timeout: 5 });
    await admin.end({ timeout: 5 });
    await scratch.close();
  }

  const tables: Table[] = [];
  const targets: Target[] = [];
  for (const hook of HOOKS) {
    const rowsOut: (string | number)[][] = [];
    for (const c of opts.concurrency) {
      const f = get(key('fn', hook, c))!;
      const http = get(key('http', hook, c))!;
      const dbc = get(key('db', 'sync_user', c))!;
      const lower = Math.min(http.rps, dbc.rps);
      rowsOut.push([
        c,
        fmt(f.rps),
        fmt(f.p50),
        fmt(f.p99),
        f.errors,
        fmt(http.rps),
        `${fmt(dbc.rps)} (p50 ${fmt(dbc.p50)}, p99 ${fmt(dbc.p99)})`,
        ratio(f.rps / lower),
      ]);
      targets.push({
        name: `${hook} at ${c}: req/s / lower ceiling`,
        value: f.rps / lower,
        op: '>=',
        limit: 0.5,
      });
      if (c === 16) {
        targets.push({ name: `${hook} at 16: p99`, value: f.p99, op: '<', limit: 50, unit: ' ms' });
      }
      if (f.errors > 0) {
        targets.push({
          name: `${hook} at ${c}: failed requests`,
          value: f.errors,
          op: '==',
          limit: 0,
        });
      }
    }
    tables.push({
      title: `${hook}: the Deno entry vs its ceilings`,
      columns: [
        'concurrency',
        'req/s',
        'p50 ms',
        'p99 ms',
        'non-2xx/errors',
        'HTTP ceiling req/s',
        'DB ceiling req/s (ms)',
        'vs lower ceiling',
      ],
      rows: rowsOut,
    });
  }
  const sqlHookRows = opts.concurrency
    .map((c) =>
      [
        c,
        get(key('sqlhook', 'custom-access-token', c)),
        get(key('fn', 'custom-access-token', c))!,
      ] as const
    )
    .filter((r) => r[1] !== undefined);
  if (sqlHookRows.length) {
    tables.push({
      title: 'custom-access-token as a Postgres-function hook (SQL) beside the HTTP hook',
      columns: [
        'concurrency',
        'SQL hook calls/s',
        'p50 ms',
        'p99 ms',
        'errors',
        'HTTP hook req/s',
        'SQL / HTTP',
      ],
      rows: sqlHookRows.map((
        [c, s, f],
      ) => [
        c,
        fmt(s!.rps),
        fmt(s!.p50),
        fmt(s!.p99),
        s!.errors,
        fmt(f.rps),
        ratio(s!.rps / f.rps),
      ]),
    });
  }
  return partResult({ part: 'hooks', title: '3. Hooks', command, started }, {
    tables,
    targets,
    notes: [
      `Median of ${opts.rounds} round(s) of ${opts.durationS} s per measurement (after ` +
      `${Math.min(1, opts.durationS)} s of warm-up), the function and its ceilings in turn; ` +
      'requests spread over ' +
      `${opts.users} synced users, signed like Supabase Auth (dev/auth/supabase-auth.ts), ` +
      'pre-signed before each run; autocannon with one request in flight per connection.',
      `The function: ${ENTRY} under Deno with DATABASE_URL (the direct gateway, pool of 3, ` +
      'set local role service_role per call), logging one JSON line per request as deployed.',
      'HTTP ceiling: bench/deno/bare-server.ts, a bare Deno.serve that parses the body and ' +
      'answers the same JSON (no signature, no validation, no database).',
      "DB ceiling: public.sync_user called from Node through the function's own direct gateway " +
      '(shared/gateways/direct.ts: postgres.js, pool of 3, same transaction) at the same ' +
      'number of concurrent callers.',
      scratch.features.sqlHook
        ? 'SQL hook: select "public"."hook_custom_access_token"($1) as supabase_auth_admin with ' +
          "set local statement_timeout = '2000', pool of 3, same payloads."
        : 'public.hook_custom_access_token(jsonb) does not exist yet: no SQL hook variant.',
      'Load generator, Deno and PostgreSQL share the same 2 cores.',
      migrationsNote(scratch.features),
    ],
  });
}
