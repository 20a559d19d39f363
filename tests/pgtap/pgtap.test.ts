// The pgTAP acceptance suite (supabase/tests/database) in `npm test`: where DATABASE_URL is set
// (the server run) and pg_prove is on PATH, tests/pgtap/suite.ts starts a hosted-shaped cluster
// of its own, runs the suite with pg_prove as `postgres` on the migrated install (it must pass
// and leave the project's own data as it was), then on four broken copies (each must fail).
// On PGlite it is skipped: the suite itself needs a real PostgreSQL with pgtap. A server run
// without pg_prove fails.

import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AcceptanceReport, BREAKAGES, describeReport, runAcceptance } from './suite.ts';

const SERVER = Boolean(process.env.DATABASE_URL);
const PG_PROVE = spawnSync('pg_prove', ['--version'], { stdio: 'ignore' }).status === 0;

// A server run without pg_prove would pass by skipping the suite: say so instead (.ci/run installs
// it; `apt-get install libtap-parser-sourcehandler-pgtap-perl postgresql-15-pgtap`).
describe.runIf(SERVER && !PG_PROVE)('pgTAP acceptance suite needs pg_prove on a server run', () => {
  it('finds pg_prove on PATH', () => {
    expect(PG_PROVE, 'pg_prove not found: apt-get install libtap-parser-sourcehandler-pgtap-perl')
      .toBe(true);
  });
});

describe.skipIf(!SERVER || !PG_PROVE)('pgTAP acceptance suite (server run with pg_prove)', () => {
  let report: AcceptanceReport;

  beforeAll(async () => {
    report = await runAcceptance();
    if (process.env.DEBUG_DB_HARNESS) console.log(describeReport(report));
  }, 180_000);

  it('passes on the install, as postgres', () => {
    expect(report.good.failed, report.good.output).toEqual([]);
    expect(report.good.dubious, report.good.output).toEqual([]);
    expect(report.good.code, report.good.output).toBe(0);
    // At least the 60 assertions the issue asks for ran.
    const tests = Number(/Tests=(\d+)/.exec(report.good.output)?.[1] ?? 0);
    expect(tests).toBeGreaterThanOrEqual(60);
  });

  it("leaves the project's own users, rows and objects as they were", () => {
    expect(report.projectDiff).toEqual([]);
  });

  it.each(BREAKAGES.map((b) => b.name))('fails on a broken install: %s', (name) => {
    const run = report.broken.find((r) => r.breakage.name === name);
    expect(run, name).toBeDefined();
    expect(run!.code, run!.output).not.toBe(0);
    // Noticed by an assertion, not by an error that stopped a file.
    expect(run!.failed.length, run!.output).toBeGreaterThan(0);
  });
});
