// `npx supabase-user-sync resync --url <function URL> [--token …] [--dry-run] [--batch-size N]
// [--json]` (in this repository: `npm run resync -- …`)
//
// For operators: finds and repairs drift between auth.users and public.users through the
// function's POST /resync. It checks first (a dry run), repairs what it found, then checks
// again, so "in sync" is something it saw, not something it assumed. Progress goes to stderr,
// the report to stdout. The token comes from --token or USER_SYNC_ADMIN_TOKEN and is never
// printed.
//
// Exit codes: 0 in sync · 1 drift or failures remain · 2 bad usage · 3 the function refused
// (wrong token, route switched off) · 4 could not finish (unreachable, wrong URL, server error).

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import {
  driftOf,
  inSync,
  type Progress,
  resyncEndpoint,
  type ResyncError,
  type ResyncReport,
  runResync,
  shownUrl,
} from './resync-client.ts';
import { type Column, renderTable } from './table.ts';
import { REPORT_COUNT_KEYS, type ReportCountKey } from '../shared/resync-report.ts';

export const EXIT = { ok: 0, drift: 1, usage: 2, refused: 3, failed: 4 } as const;

const USAGE = `Usage: npx supabase-user-sync resync --url <function URL> [options]
       (in a clone of this repository: npm run resync -- --url <function URL> [options])

Finds and repairs drift between auth.users and public.users through the user-sync
function's POST /resync: a check (dry run), the repair, and a second check.

  --url <url>         the function, e.g. https://<ref>.supabase.co/functions/v1/user-sync
                      (npm start: http://127.0.0.1:54321/functions/v1/user-sync)
  --token <token>     USER_SYNC_ADMIN_TOKEN or the project's secret key. Better: set the
                      USER_SYNC_ADMIN_TOKEN environment variable (arguments show up in ps).
  --dry-run           only report the drift; write nothing
  --batch-size <n>    users per batch (1..50000; default: the function's, 1000)
  --json              print the final report as JSON instead of a table
  -h, --help          this text

Exit codes: 0 in sync, 1 drift or failures remain, 2 bad usage, 3 refused (token),
4 could not finish (unreachable, wrong URL, server error).`;

interface Options {
  url: string;
  token: string;
  dryRun: boolean;
  batchSize?: number;
  json: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'batch-size': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // parseArgs' messages quote the option name, never an option's value.
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const url = values.url ?? env.USER_SYNC_URL;
  if (!url) throw new UsageError('--url is required (the function URL).');
  const token = values.token ?? env.USER_SYNC_ADMIN_TOKEN;
  if (!token || token.trim() === '') {
    throw new UsageError('No token: set USER_SYNC_ADMIN_TOKEN or pass --token.');
  }
  let batchSize: number | undefined;
  if (values['batch-size'] !== undefined) {
    batchSize = Number(values['batch-size']);
    if (!/^\d+$/.test(values['batch-size']) || batchSize < 1 || batchSize > 50_000) {
      throw new UsageError('--batch-size must be a whole number from 1 to 50000.');
    }
  }
  return { url, token: token.trim(), dryRun: values['dry-run'], batchSize, json: values.json };
}

/**
 * One progress bar per phase, on stderr, started at the first answer (so a refused or
 * unreachable URL prints only its message). Without a TTY (a log, CI, cron) cli-progress
 * prints a line a second and one at the end instead of redrawing.
 */
function progressBar(phase: 'checking' | 'repairing' | 'verifying', total?: number) {
  const known = total !== undefined;
  let bar: cliProgress.SingleBar | null = null;
  return {
    update(p: Progress, note: string) {
      const value = p.total.auth_users;
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: known
            ? `${
              phase.padEnd(9)
            } [{bar}] {percentage}% | {value}/{total} users | {requests} requests | {note}`
            : `${phase.padEnd(9)} {value} users | {requests} requests | {note}`,
          noTTYOutput: true,
          notTTYSchedule: 1000,
          clearOnComplete: !process.stderr.isTTY,
          hideCursor: true,
        }, cliProgress.Presets.shades_classic);
        bar.start(known ? Math.max(total, 1) : Math.max(value, 1), value, {
          requests: p.requests,
          note,
        });
      }
      if (!known) bar.setTotal(Math.max(value, 1));
      bar.update(value, { requests: p.requests, note });
    },
    stop: () => bar?.stop(),
  };
}

async function phase(
  name: 'checking' | 'repairing' | 'verifying',
  opts: Options,
  dryRun: boolean,
  total?: number,
): Promise<ResyncReport & { requests: number }> {
  const bar = progressBar(name, total);
  try {
    return await runResync(resyncEndpoint(opts.url), opts.token, {
      dryRun,
      batchSize: opts.batchSize,
      onProgress: (p) =>
        bar.update(
          p,
          dryRun
            ? `${driftOf(p.total)} out of step`
            : `${
              p.total.inserted + p.total.updated + p.total.deleted
            } written, ${p.total.failed} failed`,
        ),
    });
  } finally {
    bar.stop();
  }
}

/** The report table's rows: every count of the report, then the failures still on record. */
const LABELS: Record<ReportCountKey | 'failures_pending', string> = {
  auth_users: 'auth users',
  app_users: 'app users',
  missing: 'missing (no app row)',
  stale: 'stale (app row differs)',
  orphaned: 'orphaned (no auth user)',
  inserted: 'inserted',
  updated: 'updated',
  deleted: 'deleted',
  unchanged: 'unchanged',
  failed: 'failed',
  failures_pending: 'failures pending',
};
const ROWS = [...REPORT_COUNT_KEYS, 'failures_pending' as const].map((key) => ({
  key,
  label: LABELS[key],
}));

export function reportTable(
  phases: Array<{ title: string; report: ResyncReport }>,
): string {
  const columns: Column<(typeof ROWS)[number]>[] = [
    { header: '', value: (r) => r.label, align: 'left' },
    ...phases.map(({ title, report }) => ({
      header: title,
      value: (r: (typeof ROWS)[number]) => report[r.key],
      align: 'right' as const,
    })),
  ];
  return renderTable(ROWS, columns);
}

function explainDrift(r: ResyncReport): string[] {
  const lines: string[] = [];
  if (r.missing) lines.push(`${r.missing} auth user(s) have no public.users row.`);
  if (r.stale) {
    lines.push(`${r.stale} public.users row(s) differ from what auth.users says.`);
  }
  if (r.orphaned) lines.push(`${r.orphaned} public.users row(s) have no auth user.`);
  if (r.failures_pending) {
    lines.push(
      `${r.failures_pending} recorded sync failure(s) in user_sync.sync_failures ` +
        '(select * from user_sync.sync_failures; to see why).',
    );
  }
  return lines;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let opts: Options;
  try {
    const parsed = parseOptions(argv, env);
    if (parsed === 'help') {
      console.log(USAGE);
      return EXIT.ok;
    }
    opts = parsed;
    resyncEndpoint(opts.url);
  } catch (err) {
    console.error(`resync: ${(err as Error).message}\nRun with --help for the options.`);
    return EXIT.usage;
  }
  const where = shownUrl(resyncEndpoint(opts.url));
  console.error(`resync: ${opts.dryRun ? 'checking' : 'checking and repairing'} ${where}`);

  try {
    const before = await phase('checking', opts, true);
    const phases: Array<{ title: string; report: ResyncReport }> = [
      { title: 'found', report: before },
    ];
    let final: ResyncReport = before;
    if (!opts.dryRun && !inSync(before)) {
      const repaired = await phase('repairing', opts, false, before.auth_users);
      const after = await phase('verifying', opts, true, repaired.auth_users);
      phases.push({ title: 'repaired', report: repaired }, { title: 'after', report: after });
      final = after;
    }

    if (opts.json) {
      console.log(JSON.stringify(
        { in_sync: inSync(final), ...Object.fromEntries(phases.map((p) => [p.title, p.report])) },
        null,
        2,
      ));
    } else {
      console.log(reportTable(phases));
      console.log('');
      if (inSync(final)) {
        console.log(
          opts.dryRun || phases.length === 1
            ? `In sync: ${final.auth_users} auth users, ${final.app_users} app users, nothing to repair.`
            : `In sync now: ${final.auth_users} auth users, ${final.app_users} app users.`,
        );
      } else {
        const why = explainDrift(final);
        console.log(
          opts.dryRun
            ? `Drift found (nothing was written; run without --dry-run to repair):`
            : `Still out of step after the repair:`,
        );
        for (const line of why) console.log(`  - ${line}`);
      }
    }
    return inSync(final) ? EXIT.ok : EXIT.drift;
  } catch (err) {
    if ((err as Error)?.name !== 'ResyncError') throw err;
    const e = err as ResyncError;
    console.error(`resync: ${e.message}`);
    return e.kind === 'refused' ? EXIT.refused : e.kind === 'invalid' ? EXIT.usage : EXIT.failed;
  }
}

const invokedDirectly = process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (err) => {
    console.error('resync: unexpected error:', err instanceof Error ? err.message : err);
    process.exitCode = EXIT.failed;
  });
}
