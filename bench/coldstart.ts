// Part 4: process start to first 200 of the deployed Deno entry vs the smallest Hono app under
// the same Deno and import map, and the size of what each deploys.

import { execFile } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createScratch } from './lib/db.ts';
import { codeRoot } from './lib/db.ts';
import { benchScript, CONFIG, DENO, ENTRY, startDeno } from './lib/deno.ts';
import { fmt, median, ms, type PartResult, ratio } from './lib/report.ts';

export interface ColdstartOptions {
  runs: number;
}

const MINIMAL = benchScript('minimal-hono.ts');

interface Graph {
  modules: number;
  bytes: number;
  localModules: number;
  localBytes: number;
}

/**
 * What deploying `script` ships: `deno bundle` (esbuild, as the Supabase CLI bundles the
 * reachable graph, dynamic imports included) for modules and bytes, and `deno info` for the
 * project's own files among them.
 */
async function graph(script: string): Promise<Graph> {
  const run = promisify(execFile);
  const env = { ...process.env, NO_COLOR: '1' };
  const out = `/tmp/usync-bench-${process.pid}-${script.replace(/\W/g, '_')}.js`;
  const cwd = codeRoot();
  const bundled = await run(DENO, [
    'bundle',
    '--node-modules-dir=manual',
    '--config',
    CONFIG,
    script,
    '-o',
    out,
  ], { env, cwd });
  const modules = Number(/Bundled (\d+) modules/.exec(bundled.stderr + bundled.stdout)?.[1]);
  const { size } = await stat(out);
  await rm(out, { force: true });
  const info = JSON.parse(
    (await run(DENO, ['info', '--json', '--node-modules-dir=manual', '--config', CONFIG, script], {
      env,
      cwd,
      maxBuffer: 2 ** 26,
    }))
      .stdout,
  ) as { modules: { specifier: string; size?: number }[] };
  const local = info.modules.filter((m) => !m.specifier.includes('/node_modules/'));
  return {
    modules,
    bytes: size,
    localModules: local.length,
    localBytes: local.reduce((n, m) => n + (m.size ?? 0), 0),
  };
}

export async function coldstart(opts: ColdstartOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const scratch = await createScratch();
  const db = await scratch.clone('cold');
  const entryEnv = {
    DATABASE_URL: db.url,
    AUTH_HOOK_SECRET: `v1,whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`,
  };
  const times = { entry: [] as number[], minimal: [] as number[] };
  const listen = { entry: [] as number[], minimal: [] as number[] };
  try {
    // One unmeasured start of each fills Deno's module cache, as a deployed worker has it.
    for (let i = -1; i < opts.runs; i++) {
      const order: ('entry' | 'minimal')[] = i % 2 ? ['entry', 'minimal'] : ['minimal', 'entry'];
      for (const which of order) {
        const proc = which === 'entry'
          ? await startDeno(ENTRY, entryEnv, '/user-sync/health')
          : await startDeno(MINIMAL, {}, '/user-sync/health');
        await proc.stop();
        if (i >= 0) {
          times[which].push(proc.startMs);
          listen[which].push(proc.listenMs);
        }
      }
    }
  } finally {
    await scratch.close();
  }
  const [entryGraph, minimalGraph] = [await graph(ENTRY), await graph(MINIMAL)];
  const e = median(times.entry);
  const m = median(times.minimal);
  return {
    part: 'coldstart',
    title: '4. Cold start',
    command,
    date: new Date().toISOString(),
    seconds: (performance.now() - started) / 1000,
    tables: [
      {
        title: `Process start to first 200 of GET /user-sync/health, median of ${opts.runs}`,
        columns: ['app', 'first 200', 'runs', '"Listening on"', 'vs minimal'],
        rows: [
          [
            'user-sync entry',
            ms(e),
            times.entry.map((t) => fmt(t, 0)).join(', '),
            ms(median(listen.entry)),
            ratio(e / m),
          ],
          [
            'minimal Hono app',
            ms(m),
            times.minimal.map((t) => fmt(t, 0)).join(', '),
            ms(median(listen.minimal)),
            '1.00x',
          ],
        ],
      },
      {
        title: 'Deployed import graph',
        columns: ['app', 'bundled modules', 'bundle size', 'own modules', 'own source'],
        rows: [
          [
            'user-sync entry',
            entryGraph.modules,
            `${fmt(entryGraph.bytes / 1024, 0)} KiB`,
            entryGraph.localModules,
            `${fmt(entryGraph.localBytes / 1024, 1)} KiB`,
          ],
          [
            'minimal Hono app',
            minimalGraph.modules,
            `${fmt(minimalGraph.bytes / 1024, 0)} KiB`,
            minimalGraph.localModules,
            `${fmt(minimalGraph.localBytes / 1024, 1)} KiB`,
          ],
        ],
      },
    ],
    targets: [{ name: 'cold start: entry / minimal Hono', value: e / m, op: '<=', limit: 1.5 }],
    notes: [
      `Both run as ${DENO} run --allow-net --allow-env --allow-read --config ${CONFIG}, ` +
      'started alternately, after one unmeasured start each (module cache warm).',
      "The entry's health route also opens its first database connection (the direct " +
      'gateway on a scratch database), as its first hook call would.',
      'Bundle: `deno bundle` of each script (all reachable modules, dynamic imports included); ' +
      'own modules: files of this repository in `deno info`.',
    ],
  };
}
