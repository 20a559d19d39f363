// `supabase-user-sync init`: installs the migrations, the function, its config.toml tables and the
// pgTAP suite into the user's Supabase project, and records what it wrote in supabase/user-sync.json.

import { applyChanges, type Change } from './changes.ts';
import { existingTargets, migrationChanges, printChanges } from './common.ts';
import { mergeConfig } from './config-toml.ts';
import { unifiedDiff } from './diff.ts';
import {
  consoleOutput,
  EXIT,
  type ExitCode,
  InstallError,
  type Output,
  runCommand,
} from './errors.ts';
import { loadPayload, packageRoot } from './payload.ts';
import {
  CONFIG_PATH,
  findProject,
  type Marker,
  MARKER_PATH,
  markerText,
  MIGRATING_DOC,
  projectMigrations,
  readMarker,
  readProjectFile,
  sha256,
} from './project.ts';
import { checkDatabaseUrl, type DatabaseState, usersTableInProject } from './users-table.ts';

export interface InitOptions {
  /** The user's project root (default: the current directory). */
  project?: string;
  dryRun?: boolean;
  /** Also ask this database whether it has a public.users of its own. */
  dbUrl?: string;
  /** The package to install from (default: this one). */
  payloadRoot?: string;
  io?: Output;
  /** The clock new migration versions start from (tests fix it). */
  now?: Date;
  /** How --db-url is asked (tests answer from PGlite). */
  checkDatabase?: (url: string) => Promise<DatabaseState>;
}

const FOREIGN_USERS = (where: string) =>
  `${where} has a public.users of its own. supabase-user-sync creates public.users itself, ` +
  `so its migrations would fail on it. docs/migrating.md (${MIGRATING_DOC}) shows how to move ` +
  `the table aside and carry its data over; run init again after that migration.`;

/** What a person does after init, in order. */
export function nextSteps(): string[] {
  return [
    'Next steps (docs/deploy.md has each one in full):',
    '  1. Set the function\'s secrets (AUTH_HOOK_SECRET: echo "v1,whsec_$(openssl rand -base64 32)";',
    '     the two tokens: openssl rand -hex 32):',
    '       npx supabase secrets set AUTH_HOOK_SECRET=… USER_SYNC_WEBHOOK_SECRET=… USER_SYNC_ADMIN_TOKEN=…',
    '  2. Apply the migrations:',
    '       npx supabase db push',
    '  3. Deploy the function:',
    '       npx supabase functions deploy user-sync --no-verify-jwt',
    '  4. Wire the Auth hooks: Dashboard > Authentication > Hooks, HTTPS, with the AUTH_HOOK_SECRET value:',
    '       Before User Created:  https://<ref>.supabase.co/functions/v1/user-sync/hooks/before-user-created',
    '       Custom Access Token:  https://<ref>.supabase.co/functions/v1/user-sync/hooks/custom-access-token',
    '     (or the Postgres functions public.hook_before_user_created / public.hook_custom_access_token)',
    '  5. Look for users out of step, in the SQL editor:',
    '       select public.resync_users(p_dry_run => true);',
    '  6. Run the acceptance suite:',
    '       npx supabase test db',
  ];
}

export function init(opts: InitOptions = {}): Promise<ExitCode> {
  const io = opts.io ?? consoleOutput;
  return runCommand('init', io, async () => {
    const root = findProject(opts.project ?? process.cwd());
    const payload = await loadPayload(opts.payloadRoot ?? packageRoot());

    const marker = await readMarker(root);
    if (marker) {
      io.out(
        `supabase-user-sync ${marker.version} is already installed (${MARKER_PATH}); nothing changed.`,
      );
      if (marker.version !== payload.version) {
        io.out(`To move to ${payload.version}: npx supabase-user-sync upgrade`);
      }
      return EXIT.ok;
    }

    const migrations = await projectMigrations(root);
    const found = await usersTableInProject(root, migrations);
    if (found) {
      // Our own users-table migration, kept after an uninstall without --drop-data: the table
      // it made is still there, with the rows uninstall promised to keep.
      throw new InstallError(
        /_user_sync_users_table\.sql$/.test(found.file)
          ? `public.users is still there from an earlier supabase-user-sync install (${found.file}), ` +
            'kept with its rows by `uninstall` without --drop-data. In a migration of yours, move ' +
            'it aside with its index users_role and the table public.user_sync_audit (rename ' +
            `or drop them), as docs/migrating.md (${MIGRATING_DOC}) shows, then run init again.`
          : FOREIGN_USERS(`${found.file} (line ${found.line})`),
      );
    }
    if (opts.dbUrl !== undefined) {
      const check = opts.checkDatabase ?? checkDatabaseUrl;
      let state: DatabaseState;
      try {
        state = await check(opts.dbUrl);
      } catch (error) {
        throw new InstallError(
          `could not ask the database at --db-url: ${(error as Error).message}`,
          1,
        );
      }
      if (state.hasSchema) {
        throw new InstallError(
          'the database already has the schema user_sync: supabase-user-sync is installed there ' +
            'already (from a clone of its repository, or by hand), and its migrations would fail on ' +
            'it. Install into the project that owns that database history instead, or see ' +
            `docs/migrating.md (${MIGRATING_DOC}).`,
        );
      }
      if (state.hasUsers) throw new InstallError(FOREIGN_USERS('The database at --db-url'));
    }

    const configBefore = await readProjectFile(root, CONFIG_PATH);
    const config = mergeConfig(configBefore);

    const { changes: migrationWrites, recorded } = migrationChanges(
      migrations,
      payload.migrations,
      opts.now,
    );
    const fileWrites: Change[] = payload.files.map((f) => ({
      kind: 'create',
      path: f.path,
      content: f.content,
    }));
    const creates = [...migrationWrites, ...fileWrites];
    const inTheWay = existingTargets(root, creates);
    if (inTheWay.length > 0) {
      throw new InstallError(
        `these files exist already and init never overwrites a file:\n  ${
          inTheWay.join('\n  ')
        }\n` +
          'Move them away (a function of your own named user-sync? an earlier copy?) and run init again.',
      );
    }

    const newMarker: Marker = {
      package: 'supabase-user-sync',
      version: payload.version,
      migrations: recorded,
      files: Object.fromEntries(payload.files.map((f) => [f.path, sha256(f.content)])),
      config: { added: config.added, block: sha256(config.block) },
    };
    const changes: Change[] = [
      ...creates,
      {
        kind: 'update',
        path: CONFIG_PATH,
        content: config.text,
        before: configBefore,
        note: `adds ${config.added.map((t) => `[${t}]`).join(', ')}`,
      },
      {
        kind: 'create',
        path: MARKER_PATH,
        content: markerText(newMarker),
        note: 'the install marker',
      },
    ];

    io.out(`supabase-user-sync ${payload.version} → ${root}`);
    for (const note of config.notes) io.out(`Note: ${note}`);
    if (opts.dryRun) {
      printChanges(io, changes, true);
      io.out('');
      io.out('supabase/config.toml would change like this:');
      io.out(
        unifiedDiff(configBefore, config.text, 'a/supabase/config.toml', 'b/supabase/config.toml')
          .trimEnd(),
      );
      return EXIT.ok;
    }
    await applyChanges(root, changes);
    printChanges(io, changes, false);
    io.out('');
    for (const line of nextSteps()) io.out(line);
    return EXIT.ok;
  });
}
