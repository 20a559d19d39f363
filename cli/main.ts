#!/usr/bin/env node
// `npx supabase-user-sync <command>`: the package's bin. Run from the root of a Supabase project.
//
// Exit codes: 0 done · 1 failed · 2 bad usage, or a precondition the user must fix first
// (resync keeps its own: cli/resync.ts).

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { consoleOutput, EXIT, type Output } from './install/errors.ts';
import { init } from './install/init.ts';
import { loadPayload, packageRoot } from './install/payload.ts';
import { uninstall } from './install/uninstall.ts';
import { upgrade } from './install/upgrade.ts';

export const USAGE = `Usage: npx supabase-user-sync <command> [options]

Adds supabase-user-sync (public.users kept in step with auth.users) to your Supabase project.
Run it from your project's root, the folder holding supabase/.

Commands:
  init       add the migrations, the user-sync function, its config.toml tables and the
             pgTAP suite to this project, and record them in supabase/user-sync.json
               --dry-run        list what it would write, and the config.toml diff; write nothing
               --db-url <url>   also check that database for a public.users of its own
               --project <dir>  the project root (default: the current directory)
  upgrade    move an install to this version: new migrations, new function and pgTAP files
             (a file you changed that this version changes too is shown as a diff and kept
             as <file>.user-sync-backup; one it does not change stays as you left it)
               --dry-run, --project <dir>
  uninstall  write a migration that removes supabase-user-sync from the database (public.users
             and public.user_sync_audit keep their rows), and remove its files and config
               --drop-data      drop public.users and public.user_sync_audit too
               --dry-run, --project <dir>
  resync     find and repair drift through the deployed function (resync --help)

  -h, --help     this text
  -v, --version  the version of this package

Exit codes: 0 done, 1 failed, 2 bad usage or something to fix first (the message says what).`;

type Flag = 'dry-run' | 'db-url' | 'project' | 'drop-data' | 'help';

const FLAGS: Record<string, Flag[]> = {
  init: ['dry-run', 'db-url', 'project', 'help'],
  upgrade: ['dry-run', 'project', 'help'],
  uninstall: ['dry-run', 'drop-data', 'project', 'help'],
};

const OPTION_TYPES = {
  'dry-run': { type: 'boolean' },
  'db-url': { type: 'string' },
  project: { type: 'string' },
  'drop-data': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface RunOptions {
  io?: Output;
  /** The package to install from (default: this one). */
  payloadRoot?: string;
}

/** Runs one command line (without `node` and the script) and returns its exit code. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<number> {
  const io = opts.io ?? consoleOutput;
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    (command === undefined ? io.err : io.out)(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '-v' || command === '--version') {
    io.out((await loadPayload(opts.payloadRoot ?? packageRoot())).version);
    return EXIT.ok;
  }
  if (command === 'resync') {
    // Loaded only when asked for: the other commands never need its dependencies.
    const { main } = await import('./resync.ts');
    return main(rest);
  }
  const allowed = FLAGS[command];
  if (allowed === undefined) {
    io.err(`supabase-user-sync: unknown command "${command}".\n\n${USAGE}`);
    return EXIT.usage;
  }
  let values: Partial<Record<Flag, string | boolean>>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: Object.fromEntries(allowed.map((f) => [f, OPTION_TYPES[f]])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.err(`supabase-user-sync ${command}: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(USAGE);
    return EXIT.ok;
  }
  // An unset variable (--db-url "$DATABASE_URL") arrives empty, and postgres.js would take that
  // as its default, a database on localhost: the check would answer for the wrong database.
  const dbUrl = values['db-url'];
  if (typeof dbUrl === 'string' && dbUrl.trim() === '') {
    io.err(
      `supabase-user-sync ${command}: --db-url needs a postgres:// URL; it was empty (an unset ` +
        'variable?).',
    );
    return EXIT.usage;
  }
  const common = {
    project: values.project as string | undefined,
    dryRun: values['dry-run'] === true,
    payloadRoot: opts.payloadRoot,
    io,
  };
  switch (command) {
    case 'init':
      return init({ ...common, dbUrl: dbUrl as string | undefined });
    case 'upgrade':
      return upgrade(common);
    default:
      return uninstall({ ...common, dropData: values['drop-data'] === true });
  }
}

/** Whether this module is the process's script (through npm's bin symlink too). */
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (error) => {
    console.error(
      'supabase-user-sync: unexpected error:',
      error instanceof Error ? error.message : error,
    );
    process.exitCode = EXIT.failed;
  });
}
