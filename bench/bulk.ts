// Part 5: bulk statements as an admin runs them on auth.users. An import of users in one
// `insert … select` after ANALYZE of the still-empty tables (the plan a per-row probe would
// cache is a scan: quadratic), against the seed's trigger on the same statement; then one
// UPDATE that grants a role to every user, and a resync of listed ids, which must succeed
// whole, every row synced.

import { backendPid, measureBackend } from './lib/backend.ts';
import { connect, createScratch, inRotatedClones, migrationsNote, SEED_TRIGGER } from './lib/db.ts';
import type { PartResult, Target } from './lib/report.ts';
import { fmt, logRound, median, partResult, ratio } from './lib/report.ts';

export interface BulkOptions {
  /** Users imported in one statement. */
  n: number;
  /** Ids passed to resync_users(p_user_ids). */
  ids: number;
  rounds: number;
}

type Variant = 'none' | 'seed' | 'ours';

// GoTrue's columns for an email user; the name keys vary as sign-ups' metadata does.
const IMPORT = (n: number) => `
insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
  email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
  confirmation_token, recovery_token, email_change_token_new, email_change)
select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
  'authenticated', 'import' || i || '@bench.example', '', now(),
  '{"provider":"email","providers":["email"]}'::jsonb,
  case i % 3 when 0 then '{}'::jsonb
    when 1 then jsonb_build_object('full_name', 'User ' || i)
    else jsonb_build_object('name', 'User ' || i, 'avatar_url', 'https://example.com/' || i) end,
  now(), now(), '', '', '', ''
from generate_series(1, ${n}) i`;

export async function bulk(opts: BulkOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const scratch = await createScratch();
  const variants: Variant[] = ['none', 'seed', 'ours'];
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const wall = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const grant = { cpu: [] as number[], wall: [] as number[], none: [] as number[] };
  const resync = { cpu: [] as number[], wall: [] as number[], repaired: 0 };
  await inRotatedClones(
    scratch,
    'bulk',
    opts.rounds,
    variants,
    async ({ variant, round, db, admin, auth }) => {
      if (variant !== 'ours') {
        await admin.unsafe('alter table auth.users disable trigger user');
      }
      if (variant === 'seed') await admin.unsafe(SEED_TRIGGER);
      // Statistics that say "empty", as after a fresh project's autovacuum.
      await admin.unsafe('analyze auth.users; analyze public.users; checkpoint');
      await auth.unsafe('set synchronous_commit = off');
      const pid = await backendPid(auth);
      const { cost } = await measureBackend(pid, () => auth.unsafe(IMPORT(opts.n)));
      cpu.get(variant)!.push(cost.cpuMs);
      wall.get(variant)!.push(cost.wallMs);
      const [count] = await admin<{ users: number; failures: number; out: number }[]>`
            select (select count(*) from public.users)::int as users,
              (select count(*) from user_sync.sync_failures)::int as failures`;
      if (variant !== 'none' && count!.users !== opts.n) {
        throw new Error(`${variant}: ${count!.users} app rows for ${opts.n} imported users`);
      }
      if (count!.failures !== 0) throw new Error(`${variant}: ${count!.failures} failures`);

      if (variant === 'none' || variant === 'ours') {
        // One statement grants a role to every user.
        const granted = await measureBackend(pid, () =>
          auth.unsafe(
            `update auth.users set raw_app_meta_data = raw_app_meta_data || '{"role":"artist"}'`,
          ));
        (variant === 'ours' ? grant.cpu : grant.none).push(granted.cost.cpuMs);
        if (variant === 'ours') {
          grant.wall.push(granted.cost.wallMs);
          const [after] = await admin<{ artists: number; out: number; failures: number }[]>`
                select (select count(*) from public.users where role = 'artist')::int as artists,
                  (select count(*) from user_sync.plan('00000000-0000-0000-0000-000000000000',
                    'ffffffff-ffff-ffff-ffff-ffffffffffff') where not in_sync)::int as out,
                  (select count(*) from user_sync.sync_failures)::int as failures`;
          if (after!.artists !== opts.n || after!.out !== 0 || after!.failures !== 0) {
            throw new Error(`role grant: ${JSON.stringify(after)} for ${opts.n} users`);
          }
          // Listed ids, their app rows gone (say, restored from an older backup).
          const service = connect(db.url, { max: 1 });
          try {
            const ids = (await admin<{ id: string }[]>`
                  select id::text from auth.users order by id limit ${opts.ids}`).map((r) => r.id);
            await admin`delete from public.users where id = any(${ids}::uuid[])`;
            const spid = await backendPid(service);
            const repaired = await measureBackend(spid, () =>
              service.begin(async (tx) => {
                await tx.unsafe('set local role service_role');
                return await tx.unsafe(
                  'select public.resync_users(p_user_ids => $1::uuid[]) as r',
                  [ids],
                );
              }));
            const report = (repaired.value as unknown as { r: { inserted: number } }[])[0]!.r;
            if (report.inserted !== opts.ids) {
              throw new Error(`resync of ${opts.ids} ids: ${JSON.stringify(report)}`);
            }
            resync.repaired = report.inserted;
            resync.cpu.push(repaired.cost.cpuMs);
            resync.wall.push(repaired.cost.wallMs);
          } finally {
            await service.end({ timeout: 5 });
          }
        }
      }
      logRound('bulk import', round, variant, cost.wallMs, cost.cpuMs);
    },
  );

  const med = (v: Variant) => median(cpu.get(v)!);
  const seed = med('seed');
  const n = opts.n.toLocaleString('en-US');
  const targets: Target[] = [{
    name: `bulk import of ${n} after ANALYZE: ours / seed (backend CPU)`,
    value: med('ours') / seed,
    op: '<=',
    limit: 1.5,
  }];
  return partResult({ part: 'bulk', title: '5. Bulk statements on auth.users', command, started }, {
    tables: [
      {
        title:
          `insert … select of ${n} users after ANALYZE of the empty tables, median of ${opts.rounds}`,
        columns: ['variant', 'backend CPU ms (rounds)', 'vs seed (CPU)', 'wall ms (rounds)'],
        rows: variants.map((v) => [
          v,
          `${fmt(med(v))} (${cpu.get(v)!.map((t) => fmt(t)).join(', ')})`,
          ratio(med(v) / seed),
          `${fmt(median(wall.get(v)!))} (${wall.get(v)!.map((t) => fmt(t)).join(', ')})`,
        ]),
      },
      {
        title: 'one statement over every user, and a resync of listed ids (ours)',
        columns: ['statement', 'backend CPU ms (median)', 'vs no trigger', 'wall ms (median)'],
        rows: [
          [
            `update auth.users set raw_app_meta_data = … role artist (${n} users)`,
            fmt(median(grant.cpu)),
            ratio(median(grant.cpu) / median(grant.none)),
            fmt(median(grant.wall)),
          ],
          [
            `resync_users(p_user_ids => ${opts.ids.toLocaleString('en-US')} ids), rows missing`,
            fmt(median(resync.cpu)),
            '-',
            fmt(median(resync.wall)),
          ],
        ],
      },
    ],
    targets,
    notes: [
      'The import is one statement as supabase_auth_admin after `analyze` of both tables while ' +
      'empty; synchronous_commit off. Variants: none (user triggers disabled), seed ' +
      "(the baseline app's insert-only trigger, bench/lib/db.ts), ours. Each in a fresh clone; order rotates per round.",
      `After ours' import every user had a row in step; the role grant left ${n} artists, ` +
      `none out of step, no failure record; the resync inserted ${resync.repaired} rows.`,
      migrationsNote(scratch.features),
    ],
  });
}
