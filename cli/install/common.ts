// What init, upgrade and uninstall share: new migration files named after the project's newest,
// and printing a plan.

import { type Change, describeChanges } from './changes.ts';
import type { Output } from './errors.ts';
import { MIGRATIONS_DIR, type PayloadMigration } from './payload.ts';
import {
  entryExists,
  type MarkerMigration,
  newestVersion,
  type ProjectMigration,
  sha256,
  versionsAfter,
} from './project.ts';

/**
 * Our migrations as new files of the project: each gets a version after the project's newest
 * and not before now (one second apart, in our order; versionsAfter) and keeps our name after the underscore.
 */
export function migrationChanges(
  project: ProjectMigration[],
  ours: PayloadMigration[],
  now: Date = new Date(),
): { changes: Change[]; recorded: MarkerMigration[] } {
  const versions = versionsAfter(newestVersion(project), ours.length, now);
  const changes: Change[] = [];
  const recorded: MarkerMigration[] = [];
  ours.forEach((m, i) => {
    const file = `${versions[i]}_${m.suffix}`;
    changes.push({
      kind: 'create',
      path: `${MIGRATIONS_DIR}/${file}`,
      content: m.content,
      note: `from ${m.file}`,
    });
    recorded.push({ ours: m.file, file, sha256: sha256(m.content) });
  });
  return { changes, recorded };
}

/**
 * The paths of `create` changes that exist already (nothing is ever overwritten). A symbolic
 * link to nothing counts: it is in the way as much as a file (a 'wx' write fails on it).
 */
export function existingTargets(root: string, changes: Change[]): string[] {
  return changes.filter((c) => c.kind === 'create' && entryExists(root, c.path)).map((c) => c.path);
}

/** Prints the plan: what it would do (dry run) or what it did. */
export function printChanges(io: Output, changes: Change[], dryRun: boolean): void {
  if (changes.length === 0) {
    io.out(dryRun ? 'Nothing would change.' : 'Nothing changed.');
    return;
  }
  io.out(dryRun ? 'Would change (dry run, nothing written):' : 'Changed:');
  for (const line of describeChanges(changes)) io.out(line);
}
