// Part 4: process start to the first 200 of a signed custom-access-token hook, for what
// `supabase functions deploy` uploads, booted as the edge runtime boots it (tests/deploy): its own
// empty folder, no node_modules, the uploaded import map; here with a warm module cache (a
// DENO_DIR filled by an earlier boot). Baseline: the smallest Hono app answering after a
// `select 1` through the same driver, booted the same way.

import { execFile } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type AuthUserRow,
  hookHeaders,
  newHookSecret,
  tokenHookBody,
} from '../dev/auth/supabase-auth.ts';
import {
  deployFunction,
  type ManagementApi,
  startManagementApi,
  writeUpload,
} from '../dev/supabase-cli.ts';
import { benchSql, codeRoot, connect, createScratch, migrationsNote } from './lib/db.ts';
import { uploadBootEnv } from '../dev/deno.ts';
import { benchScript, DENO, RUN_FLAGS, spawnDeno } from './lib/deno.ts';
import { fmt, median, ms, type PartResult, partResult, ratio } from './lib/report.ts';

export interface ColdstartOptions {
  runs: number;
}

const HOOK_PATH = '/user-sync/hooks/custom-access-token';

/** A booted folder: what deno runs there and with which import map. */
interface Deployed {
  root: string;
  entrypoint: string;
  importMap: string;
}

interface Graph {
  modules: number;
  bytes: number;
  localModules: number;
  localBytes: number;
}

/**
 * What the real CLI uploads for the measured code (the working tree or --ref): shared/, the
 * function and supabase/config.toml in a folder of their own, deployed to a Management API
 * stand-in (dev/supabase-cli.ts), written out into `root`.
 */
async function deployUpload(api: ManagementApi, work: string, root: string): Promise<Deployed> {
  const project = join(work, 'project');
  const from = codeRoot();
  await cp(join(from, 'shared'), join(project, 'shared'), { recursive: true });
  await cp(join(from, 'supabase/functions'), join(project, 'supabase/functions'), {
    recursive: true,
    filter: (src) => !/\/\.env$/.test(src),
  });
  // A --ref export carries no config.toml: the working tree's then.
  const config = await access(join(from, 'supabase/config.toml')).then(
    () => join(from, 'supabase/config.toml'),
    () => 'supabase/config.toml',
  );
  await cp(config, join(project, 'supabase/config.toml'));
  const upload = await deployFunction(api, project);
  await writeUpload(upload, root);
  return {
    root,
    entrypoint: upload.metadata.entrypoint_path,
    importMap: upload.metadata.import_map_path!,
  };
}

/** The baseline in a folder of its own, with the upload's versions of hono and postgres. */
async function writeMinimal(upload: Deployed, root: string): Promise<Deployed> {
  const map = JSON.parse(await readFile(join(upload.root, upload.importMap), 'utf8')) as {
    imports: Record<string, string>;
  };
  const imports = Object.fromEntries(
    ['hono', 'postgres'].map((name) => {
      const target = map.imports[name];
      if (!target) throw new Error(`the upload's import map has no "${name}"`);
      return [name, target];
    }),
  );
  const dir = join(root, 'supabase/functions/minimal');
  await mkdir(dir, { recursive: true });
  await cp(benchScript('minimal-hono.ts'), join(dir, 'index.ts'));
  await writeFile(join(dir, 'deno.json'), JSON.stringify({ imports }, null, 2) + '\n');
  return {
    root,
    entrypoint: 'supabase/functions/minimal/index.ts',
    importMap: 'supabase/functions/minimal/deno.json',
  };
}

/**
 * What booting `app` loads: `deno bundle` (all reachable modules, dynamic imports included) for
 * modules and bytes, and `deno info` for the files of the folder among them.
 */
async function graph(app: Deployed, env: Record<string, string>): Promise<Graph> {
  const run = promisify(execFile);
  const out = join(app.root, '..', `${app.entrypoint.replace(/\W/g, '_')}.bundle.js`);
  const opts = { env, cwd: app.root, maxBuffer: 2 ** 26 };
  const bundled = await run(
    DENO,
    ['bundle', '--config', app.importMap, app.entrypoint, '-o', out],
    opts,
  );
  const modules = Number(/Bundled (\d+) modules/.exec(bundled.stderr + bundled.stdout)?.[1]);
  const { size } = await stat(out);
  await rm(out, { force: true });
  const info = JSON.parse(
    (await run(DENO, ['info', '--json', '--config', app.importMap, app.entrypoint], opts)).stdout,
  ) as { modules: { specifier: string; size?: number }[] };
  const local = info.modules.filter((m) => m.specifier.startsWith('file:'));
  return {
    modules,
    bytes: size,
    localModules: local.length,
    localBytes: local.reduce((n, m) => n + (m.size ?? 0), 0),
  };
}

export async function coldstart(opts: ColdstartOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const scratch = await createScratch(await benchSql('resync.sql'));
  const work = await mkdtemp(join(tmpdir(), 'usync-bench-cold-'));
  let api: ManagementApi | undefined;
  const times = { entry: [] as number[], minimal: [] as number[] };
  const listen = { entry: [] as number[], minimal: [] as number[] };
  const graphs: Record<'entry' | 'minimal', Graph | undefined> = {
    entry: undefined,
    minimal: undefined,
  };
  let firstBootMs = NaN;
  try {
    const db = await scratch.clone('cold');
    const admin = connect(db.url);
    let row: AuthUserRow | undefined;
    try {
      await admin.unsafe('set session_replication_role = replica');
      await admin.unsafe('call bench.load_users(1)');
      await admin.unsafe('set session_replication_role = origin');
      await admin.unsafe('select public.resync_users()');
      [row] = await admin<AuthUserRow[]>`select * from auth.users`;
    } finally {
      await admin.end({ timeout: 5 });
    }
    if (!row) throw new Error('bench.load_users(1) made no user');
    const user = row;

    api = await startManagementApi();
    const apps = {
      entry: await deployUpload(api, work, join(work, 'upload')),
      minimal: undefined as Deployed | undefined,
    };
    apps.minimal = await writeMinimal(apps.entry, join(work, 'minimal'));
    const home = join(work, 'home');
    await mkdir(home);
    const env = uploadBootEnv(home, join(work, 'deno-dir'));
    const secret = newHookSecret();
    const appEnv = {
      entry: { ...env, SUPABASE_DB_URL: db.url, AUTH_HOOK_SECRET: secret },
      minimal: { ...env, SUPABASE_DB_URL: db.url },
    };
    const body = tokenHookBody(user);

    const boot = async (which: 'entry' | 'minimal') => {
      const app = apps[which]!;
      // Signed before the clock starts, as Supabase Auth sends it: one request, retried as is.
      const headers = await hookHeaders(body, { secrets: secret });
      return await spawnDeno({
        script: app.entrypoint,
        flags: [...RUN_FLAGS, '--config', app.importMap],
        cwd: app.root,
        env: appEnv[which],
        ready: async (port) => {
          let res: Response;
          try {
            res = await fetch(`http://127.0.0.1:${port}${HOOK_PATH}`, {
              method: 'POST',
              headers,
              body,
            });
          } catch {
            return false; // not listening yet
          }
          const text = await res.text();
          if (res.status !== 200) throw new Error(`answered ${res.status}: ${text}`);
          // The entry answers 200 without user_role when it cannot reach the database.
          const answer = JSON.parse(text) as { claims?: { user_role?: unknown } };
          if (which === 'entry' && typeof answer.claims?.user_role !== 'string') {
            throw new Error(`answered without user_role: ${text}`);
          }
          return true;
        },
      });
    };

    // One unmeasured boot of each fills the empty DENO_DIR (npm packages downloaded, modules
    // compiled and cached), as a worker that booted before has it.
    for (let i = -1; i < opts.runs; i++) {
      const order: ('entry' | 'minimal')[] = i % 2 ? ['entry', 'minimal'] : ['minimal', 'entry'];
      for (const which of order) {
        const proc = await boot(which);
        await proc.stop();
        if (i < 0 && which === 'entry') firstBootMs = proc.startMs;
        if (i >= 0) {
          times[which].push(proc.startMs);
          listen[which].push(proc.listenMs);
        }
      }
    }
    graphs.entry = await graph(apps.entry, env);
    graphs.minimal = await graph(apps.minimal, env);
  } finally {
    await api?.close();
    await scratch.close();
    await rm(work, { recursive: true, force: true });
  }
  const e = median(times.entry);
  const m = median(times.minimal);
  const graphRow = (name: string, g: Graph) => [
    name,
    g.modules,
    `${fmt(g.bytes / 1024, 0)} KiB`,
    g.localModules,
    `${fmt(g.localBytes / 1024, 1)} KiB`,
  ];
  return partResult({ part: 'coldstart', title: '4. Cold start', command, started }, {
    tables: [
      {
        title:
          'Process start to first 200 of a signed POST /user-sync/hooks/custom-access-token, ' +
          `warm DENO_DIR, median of ${opts.runs}`,
        columns: ['app', 'first 200', 'runs', '"Listening on"', 'vs minimal'],
        rows: [
          [
            'user-sync upload',
            ms(e),
            times.entry.map((t) => fmt(t, 0)).join(', '),
            ms(median(listen.entry)),
            ratio(e / m),
          ],
          [
            'minimal Hono + select 1',
            ms(m),
            times.minimal.map((t) => fmt(t, 0)).join(', '),
            ms(median(listen.minimal)),
            '1.00x',
          ],
        ],
      },
      {
        title: 'What each boot loads',
        columns: ['app', 'bundled modules', 'bundle size', 'own modules', 'own source'],
        rows: [
          graphRow('user-sync upload', graphs.entry!),
          graphRow('minimal Hono + select 1', graphs.minimal!),
        ],
      },
    ],
    targets: [{
      name: 'cold start: upload / minimal Hono + select 1',
      value: e / m,
      op: '<=',
      limit: 1.5,
    }],
    notes: [
      'The user-sync upload: what `supabase functions deploy user-sync` (the real CLI, to a ' +
      'Management API stand-in: dev/supabase-cli.ts) uploaded, written into an empty ' +
      `folder and run there as tests/deploy boots it: ${DENO} run ${
        RUN_FLAGS.join(' ')
      } --config ` +
      '<uploaded import map> <entrypoint>, no node_modules, SUPABASE_DB_URL and AUTH_HOOK_SECRET ' +
      'set; its first 200 carries user_role, so the database answered.',
      'Minimal: bench/deno/minimal-hono.ts (Hono, `postgres` with the pool settings of the ' +
      "function's driver, one route answering after `select 1`), booted the same way in its own " +
      "folder with the upload's versions of hono and postgres.",
      'Both share one DENO_DIR, filled by one unmeasured boot of each (the first boot of the ' +
      `upload, downloads included, took ${ms(firstBootMs)}); then started alternately. The ` +
      'signed request is made before the process starts and sent every 2 ms until it answers.',
      'Bundle: `deno bundle` of each entrypoint (all reachable modules, dynamic imports ' +
      "included); own modules: the folder's files in `deno info`.",
      migrationsNote(scratch.features),
    ],
  });
}
