// `npx tsx tests/pgtap/run.ts` (or .ci/pgtap.sh): the pgTAP acceptance suite on a
// hosted-shaped cluster of its own, then on four broken copies of the install (tests/pgtap/suite.ts).
// Exits 0 only when the suite passes on the install, leaves the project's own data as it was,
// and fails on every broken copy.

import { describeReport, hasPgProve, runAcceptance, verdict } from './suite.ts';

if (!(await hasPgProve())) {
  console.error(
    'pg_prove is not on PATH (Debian: apt-get install libtap-parser-sourcehandler-pgtap-perl)',
  );
  process.exit(2);
}
const report = await runAcceptance({ log: (line) => console.log(`pgtap: ${line}`) });
console.log(describeReport(report));
const { ok, problems } = verdict(report);
if (!ok) {
  for (const problem of problems) console.error(`pgtap: FAILED: ${problem}`);
  process.exit(1);
}
console.log('pgtap: the suite passes on the install and fails on every broken copy');
