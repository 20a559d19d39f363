// Part 1: what our trigger adds to a sign-up, against no trigger and the seed document's
// trigger, on identical sign-ups in fresh clones of one template, variants interleaved.

import { backendPid, measureBackend } from './lib/backend.ts';
import {
  benchSql,
  createScratch,
  inRotatedClones,
  migrationsNote,
  SEED_TRIGGER,
} from './lib/db.ts';
import type { PartResult, Target } from './lib/report.ts';
import { fmt, logRound, median, partResult, ratio } from './lib/report.ts';

export interface SignupOptions {
  n: number;
  rounds: number;
  /** Sign-ups per transaction (1: each its own, as GoTrue does). */
  commitEvery: number;
  /** Add GoTrue's email sign-up fourth statement (identity data into user metadata). */
  metadataUpdate: boolean;
}

type Variant = 'none' | 'seed' | 'ours' | 'ours+audit';

/** Run on the clone as superuser before the sign-ups: which triggers are on. */
function variantSetup(variant: Variant): string[] {
  switch (variant) {
    case 'none':
      return ['alter table auth.users disable trigger user'];
    case 'seed':
      return ['alter table auth.users disable trigger user', SEED_TRIGGER];
    case 'ours':
      return [];
    case 'ours+audit':
      return ['update user_sync.audit_settings set enabled = true'];
  }
}

export async function signup(opts: SignupOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const scratch = await createScratch(await benchSql('signup.sql'));
  const variants: Variant[] = ['none', 'seed', 'ours'];
  if (scratch.features.audit) variants.push('ours+audit');
  const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const rows = new Map<Variant, number>();
  await inRotatedClones(
    scratch,
    'signup',
    opts.rounds,
    variants,
    async ({ variant, round, admin, auth }) => {
      for (const statement of variantSetup(variant)) await admin.unsafe(statement);
      if (scratch.features.audit && variant === 'ours') {
        await admin.unsafe('update user_sync.audit_settings set enabled = false');
      }
      await admin.unsafe('checkpoint');
      // Commits wait for no fsync: the disk's flush time is the same for every variant and
      // would only hide the difference being measured.
      await auth.unsafe('set synchronous_commit = off');
      const pid = await backendPid(auth);
      const { cost } = await measureBackend(pid, () =>
        auth.unsafe(
          `call bench.signups(${opts.n}, ${opts.commitEvery}, ${opts.metadataUpdate})`,
        ).simple());
      const ms = cost.wallMs;
      cpu.get(variant)!.push(cost.cpuMs);
      times.get(variant)!.push(ms);
      const [count] = await admin<{ users: number; failures: number }[]>`
            select (select count(*) from public.users)::int as users,
              (select count(*) from user_sync.sync_failures)::int as failures`;
      if (variant !== 'none' && count!.users !== opts.n) {
        throw new Error(`${variant}: ${count!.users} app rows for ${opts.n} sign-ups`);
      }
      if (count!.failures !== 0) throw new Error(`${variant}: ${count!.failures} failures`);
      rows.set(variant, count!.users);
      logRound('signup', round, variant, ms, cost.cpuMs);
    },
  );

  const wall = (v: Variant) => median(times.get(v)!);
  const med = (v: Variant) => median(cpu.get(v)!);
  const none = med('none');
  const seed = med('seed');
  const perSignup = (x: number) => (x / opts.n) * 1000;
  const table = {
    title: `${opts.n.toLocaleString('en-US')} sign-ups, median of ${opts.rounds} rounds`,
    columns: [
      'variant',
      'backend CPU ms (rounds)',
      'CPU µs / sign-up',
      'trigger CPU µs / sign-up',
      'vs seed (CPU)',
      'wall ms (rounds)',
      'vs seed (wall)',
    ],
    rows: variants.map((v) => [
      v,
      `${fmt(med(v))} (${cpu.get(v)!.map((t) => fmt(t)).join(', ')})`,
      fmt(perSignup(med(v))),
      v === 'none' ? '-' : fmt(perSignup(med(v) - none)),
      ratio(med(v) / seed),
      `${fmt(wall(v))} (${times.get(v)!.map((t) => fmt(t)).join(', ')})`,
      ratio(wall(v) / wall('seed')),
    ]),
  };
  const targets: Target[] = [
    {
      name: 'sign-up: ours / seed (backend CPU)',
      value: med('ours') / seed,
      op: '<=',
      limit: 1.1,
    },
  ];
  if (variants.includes('ours+audit')) {
    targets.push({
      name: 'sign-up: ours with audit / seed (backend CPU)',
      value: med('ours+audit') / seed,
      op: '<=',
      limit: 1.3,
    });
  }
  return partResult({ part: 'signup', title: '1. Sign-up cost', command, started }, {
    tables: [table],
    targets,
    notes: [
      "Each sign-up is GoTrue's statements, sent one by one from a plpgsql procedure as " +
      'supabase_auth_admin (bench/sql/signup.sql): insert into auth.users, the role update, ' +
      `the identity insert${opts.metadataUpdate ? ', the user-metadata update' : ''}; ` +
      `commit every ${opts.commitEvery} sign-up(s), synchronous_commit off.`,
      'Each measurement runs in a fresh clone of one migrated template; variants rotate ' +
      'order every round. "trigger CPU µs / sign-up" is the difference to no trigger.',
      'Judged on the CPU time of the backend running the sign-ups (/proc/<pid>/stat), which ' +
      'other work on the shared machine delays but does not inflate; wall time is shown beside.',
      `Variants: none (all user triggers disabled), seed (the baseline app's handle_new_user, a plain ` +
      `insert), ours (our migrations${scratch.features.audit ? ', audit off' : ''})` +
      (scratch.features.audit
        ? ', ours+audit (user_sync.audit_settings.enabled = true).'
        : '. user_sync.audit_settings does not exist yet: no audit variant.'),
      `Every variant but none wrote ${rows.get('ours') ?? '?'} app rows, with no failures.`,
      migrationsNote(scratch.features),
    ],
  });
}
