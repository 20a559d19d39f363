// `supabase-user-sync upgrade`: from the installed version (the marker) to this package's. Adds
// the migrations the install does not have yet, after the project's newest; replaces the function
// and pgTAP files, showing a diff and keeping a backup of each one the user changed (but leaves
// one the user changed alone where this version does not change it); removes the files we no
// longer ship, unless the user changed them.

import { applyChanges, type Change } from './changes.ts';
import { migrationChanges, printChanges } from './common.ts';
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
  compareVersions,
  entryExists,
  findProject,
  type Marker,
  MARKER_PATH,
  markerText,
  MIGRATING_DOC,
  projectMigrations,
  readMarker,
  readProjectFile,
  readProjectFileIfExists,
  sha256,
} from './project.ts';

export interface UpgradeOptions {
  project?: string;
  dryRun?: boolean;
  payloadRoot?: string;
  io?: Output;
  /** The clock new migration versions start from (tests fix it). */
  now?: Date;
}

/** The oldest install an upgrade starts from: 0.1.0's schema was replaced, not migrated. */
export const OLDEST_UPGRADABLE = '0.2.0';
export const BACKUP_SUFFIX = '.user-sync-backup';

/** A backup name that neither exists nor is planned. */
function backupPath(root: string, path: string, taken: Set<string>): string {
  for (let n = 1;; n++) {
    const candidate = `${path}${BACKUP_SUFFIX}${n === 1 ? '' : `-${n}`}`;
    if (!taken.has(candidate) && !entryExists(root, candidate)) {
      taken.add(candidate);
      return candidate;
    }
  }
}

export function upgrade(opts: UpgradeOptions = {}): Promise<ExitCode> {
  const io = opts.io ?? consoleOutput;
  return runCommand('upgrade', io, async () => {
    const root = findProject(opts.project ?? process.cwd());
    const marker = await readMarker(root);
    if (!marker) {
      throw new InstallError(
        `supabase-user-sync is not installed here (no ${MARKER_PATH}): run \`npx supabase-user-sync init\` first.`,
      );
    }
    const payload = await loadPayload(opts.payloadRoot ?? packageRoot());
    if (compareVersions(marker.version, OLDEST_UPGRADABLE) < 0) {
      throw new InstallError(
        `${marker.version} installs cannot be upgraded: that schema was replaced; see docs/migrating.md ` +
          `(${MIGRATING_DOC}).`,
      );
    }
    const order = compareVersions(payload.version, marker.version);
    if (order === 0) {
      io.out(`supabase-user-sync is already at ${marker.version}; nothing changed.`);
      return EXIT.ok;
    }
    if (order < 0) {
      throw new InstallError(
        `refusing to downgrade: ${marker.version} is installed and this package is ${payload.version}. ` +
          `Run a supabase-user-sync of ${marker.version} or later (npx supabase-user-sync@latest upgrade).`,
      );
    }

    // Migrations: ours that the install has not had yet, after the project's newest.
    const installed = new Set(marker.migrations.map((m) => m.ours));
    const missing = payload.migrations.filter((m) => !installed.has(m.file));
    const { changes: migrationWrites, recorded } = migrationChanges(
      await projectMigrations(root),
      missing,
      opts.now,
    );

    // Files: ours replace theirs; a file the user changed is shown and kept as a backup first,
    // unless ours is what it was before they changed it: then there is nothing to bring in.
    const changes: Change[] = [...migrationWrites];
    const diffs: string[] = [];
    const backups = new Set<string>();
    const unchangedByUs: string[] = [];
    const files: Record<string, string> = {};
    for (const file of payload.files) {
      files[file.path] = sha256(file.content);
      const current = await readProjectFileIfExists(root, file.path);
      const recordedSha = marker.files[file.path];
      if (current === undefined) {
        changes.push({
          kind: 'create',
          path: file.path,
          content: file.content,
          note: recordedSha ? 'was missing; written again' : 'new',
        });
      } else if (current === file.content) {
        continue;
      } else if (recordedSha === files[file.path]) {
        // The marker keeps the sha of what we wrote, so uninstall still leaves their file be.
        unchangedByUs.push(file.path);
      } else if (recordedSha !== undefined && sha256(current) === recordedSha) {
        changes.push({ kind: 'update', path: file.path, content: file.content, before: current });
      } else {
        const backup = backupPath(root, file.path, backups);
        diffs.push(
          unifiedDiff(
            current,
            file.content,
            `${file.path} (yours)`,
            `${file.path} (supabase-user-sync ${payload.version})`,
          ),
        );
        changes.push({
          kind: 'create',
          path: backup,
          content: current,
          note: `your version of ${file.path}`,
        });
        changes.push({
          kind: 'update',
          path: file.path,
          content: file.content,
          before: current,
          note: `you changed it; yours is kept as ${backup}`,
        });
      }
    }
    const kept: string[] = [];
    for (const [path, recordedSha] of Object.entries(marker.files)) {
      if (path in files) continue;
      const current = await readProjectFileIfExists(root, path);
      if (current === undefined) continue;
      if (sha256(current) === recordedSha) {
        changes.push({
          kind: 'delete',
          path,
          before: current,
          note: `no longer part of ${payload.version}`,
        });
      } else {
        kept.push(path);
        // Still ours to forget: the new marker does not list it, so uninstall leaves it alone.
      }
    }

    const newMarker: Marker = {
      ...marker,
      version: payload.version,
      migrations: [...marker.migrations, ...recorded],
      files,
    };
    changes.push({
      kind: 'update',
      path: MARKER_PATH,
      content: markerText(newMarker),
      before: await readProjectFile(root, MARKER_PATH),
      note: `${marker.version} → ${payload.version}`,
    });

    io.out(`supabase-user-sync ${marker.version} → ${payload.version} in ${root}`);
    for (const diff of diffs) {
      io.out('');
      io.out(diff.trimEnd());
    }
    if (diffs.length > 0) io.out('');
    for (const path of unchangedByUs) {
      io.out(
        `Note: ${path}: you changed it, and ${payload.version} does not change it, so yours is kept as it is.`,
      );
    }
    for (const path of kept) {
      io.out(
        `Note: ${path} is no longer part of supabase-user-sync, but you changed it, so it stays.`,
      );
    }
    if (opts.dryRun) {
      printChanges(io, changes, true);
      return EXIT.ok;
    }
    await applyChanges(root, changes);
    printChanges(io, changes, false);
    io.out('');
    io.out('Next steps:');
    if (recorded.length > 0) io.out('  npx supabase db push');
    io.out('  npx supabase functions deploy user-sync --no-verify-jwt');
    io.out('  npx supabase test db');
    return EXIT.ok;
  });
}
