// `supabase-user-sync uninstall`: a migration that removes the database side (keeping public.users
// and public.user_sync_audit with their rows, unless --drop-data), the function and pgTAP files we
// wrote and the user left unchanged, [functions.user-sync] (and our hook sections while unchanged)
// from config.toml, and the marker. The migrations already applied stay: they are history.

import { applyChanges, type Change } from './changes.ts';
import { printChanges } from './common.ts';
import { removeFromConfig } from './config-toml.ts';
import { unifiedDiff } from './diff.ts';
import {
  consoleOutput,
  EXIT,
  type ExitCode,
  InstallError,
  type Output,
  runCommand,
} from './errors.ts';
import { MIGRATIONS_DIR } from './payload.ts';
import {
  CONFIG_PATH,
  entryExists,
  findProject,
  MARKER_PATH,
  newestVersion,
  projectMigrations,
  readMarker,
  readProjectFile,
  readProjectFileIfExists,
  sha256,
  versionsAfter,
} from './project.ts';
import { uninstallSql } from './uninstall-sql.ts';
import { BACKUP_SUFFIX } from './upgrade.ts';

export interface UninstallOptions {
  project?: string;
  dryRun?: boolean;
  dropData?: boolean;
  io?: Output;
  /** When the migration says it was written (default: now). */
  now?: Date;
}

export const UNINSTALL_SUFFIX = 'user_sync_uninstall.sql';

/**
 * The user's functions (trigger functions too) whose bodies name ours. The uninstall migration's
 * check reads pg_depend, and a call inside a function body is text to it: such a function is
 * left in place and fails when next called. Ours are left out: the two schemas and the API in
 * public, which the migration drops.
 */
export const CALLERS_SQL = `select p.oid::regprocedure from pg_proc p
 where p.prosrc ~* 'user_sync|sync_user|resync_users|sync_my_user'
   and p.pronamespace not in ('user_sync'::regnamespace, 'user_sync_api'::regnamespace)
   and not (p.pronamespace = 'public'::regnamespace and p.proname in ('sync_user',
     'sync_my_user', 'resync_users', 'hook_custom_access_token', 'hook_before_user_created'));`;

export function uninstall(opts: UninstallOptions = {}): Promise<ExitCode> {
  const io = opts.io ?? consoleOutput;
  return runCommand('uninstall', io, async () => {
    const root = findProject(opts.project ?? process.cwd());
    const marker = await readMarker(root);
    if (!marker) {
      throw new InstallError(`supabase-user-sync is not installed here (no ${MARKER_PATH}).`);
    }
    const dropData = opts.dropData ?? false;
    const now = opts.now ?? new Date();

    const migrations = await projectMigrations(root);
    const [version] = versionsAfter(newestVersion(migrations), 1, now);
    const migration = `${MIGRATIONS_DIR}/${version}_${UNINSTALL_SUFFIX}`;
    const changes: Change[] = [{
      kind: 'create',
      path: migration,
      content: uninstallSql({ version: marker.version, dropData, date: now }),
      note: dropData
        ? 'drops everything, public.users and its rows too'
        : 'keeps public.users and its rows',
    }];

    const kept: string[] = [];
    for (
      const [path, recordedSha] of Object.entries(marker.files).sort(([a], [b]) =>
        a.localeCompare(b)
      )
    ) {
      const current = await readProjectFileIfExists(root, path);
      if (current === undefined) continue;
      if (sha256(current) === recordedSha) changes.push({ kind: 'delete', path, before: current });
      else kept.push(path);
    }
    // Backups an upgrade made of files the user had changed are theirs: they stay.
    for (const path of Object.keys(marker.files)) {
      if (entryExists(root, `${path}${BACKUP_SUFFIX}`)) kept.push(`${path}${BACKUP_SUFFIX}`);
    }

    const configBefore = await readProjectFile(root, CONFIG_PATH);
    const config = removeFromConfig(configBefore, marker.config.block);
    if (config.text !== configBefore) {
      changes.push({
        kind: 'update',
        path: CONFIG_PATH,
        content: config.text,
        before: configBefore,
        note: 'removes [functions.user-sync]',
      });
    }
    changes.push({
      kind: 'delete',
      path: MARKER_PATH,
      before: await readProjectFile(root, MARKER_PATH),
      note: 'the install marker',
    });

    io.out(`supabase-user-sync ${marker.version}: uninstall from ${root}`);
    for (const path of kept) {
      io.out(
        path.endsWith(BACKUP_SUFFIX)
          ? `Note: ${path} (your version, kept by an upgrade) stays.`
          : `Note: ${path} was changed after it was installed, so it stays.`,
      );
    }
    for (const note of config.notes) io.out(`Note: ${note}`);
    if (opts.dryRun) {
      printChanges(io, changes, true);
      if (config.text !== configBefore) {
        io.out('');
        io.out('supabase/config.toml would change like this:');
        io.out(
          unifiedDiff(configBefore, config.text, 'a/supabase/config.toml', 'b/supabase/config.toml')
            .trimEnd(),
        );
      }
      return EXIT.ok;
    }
    await applyChanges(root, changes);
    printChanges(io, changes, false);
    io.out('');
    io.out('Next steps:');
    io.out(
      '  1. Unwire the Auth hooks that point at supabase-user-sync: Dashboard > Authentication > Hooks',
    );
    io.out(
      '     (and the auth.users database webhook, if you added one). Do this before the push.',
    );
    io.out(
      '  2. A function or trigger of yours whose body calls ours (sync_user, resync_users,',
    );
    io.out(
      "     sync_my_user, user_sync.*) is not detected by the migration's check and will fail after",
    );
    io.out(
      '     the push. Before pushing, list them in the SQL editor, and change or drop each one:',
    );
    for (const line of CALLERS_SQL.split('\n')) io.out(`       ${line}`);
    io.out(`  3. Apply ${migration}:`);
    io.out('       npx supabase db push');
    io.out('  4. Delete the deployed function:');
    io.out('       npx supabase functions delete user-sync');
    io.out(
      '  5. Unschedule any pg_cron job or cron entry that calls resync_users, prune_audit or',
    );
    io.out('     supabase-user-sync resync: they fail once the migration is applied.');
    io.out(
      `Our migrations already applied stay in ${MIGRATIONS_DIR}/: they are your database's history.` +
        (dropData ? '' : ' public.users and public.user_sync_audit keep their rows.'),
    );
    return EXIT.ok;
  });
}
