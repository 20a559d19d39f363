// What a command will do to the project, as a list: shown as it is by --dry-run, applied as it is
// otherwise. Applying never overwrites a file it means to create, and undoes what it did when a
// write fails half way, so a project is left as it was or as it should be.

import { mkdir, readdir, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { InstallError } from './errors.ts';

export type Change =
  /** A new file; applying fails if the path exists. */
  | { kind: 'create'; path: string; content: string; note?: string }
  /** An existing file rewritten; `before` is what it held. */
  | { kind: 'update'; path: string; content: string; before: string; note?: string }
  /** An existing file removed; `before` is what it held. */
  | { kind: 'delete'; path: string; before: string; note?: string };

/** One line per change: `create  supabase/migrations/…`, with its note. */
export function describeChanges(changes: Change[]): string[] {
  return changes.map((c) => `  ${c.kind.padEnd(6)}  ${c.path}${c.note ? `  (${c.note})` : ''}`);
}

/** Folders that stay even when a delete empties them. */
const KEEP_DIRS = new Set([
  '',
  'supabase',
  'supabase/functions',
  'supabase/tests',
  'supabase/tests/database',
  'supabase/migrations',
]);

async function removeEmptyParents(root: string, path: string): Promise<void> {
  let dir = posix.dirname(path);
  while (dir !== '.' && !KEEP_DIRS.has(dir)) {
    try {
      if ((await readdir(join(root, dir))).length > 0) return;
      await rmdir(join(root, dir));
    } catch {
      return;
    }
    dir = posix.dirname(dir);
  }
}

/** Applies the changes in order; on a failure, undoes those already applied and throws. */
export async function applyChanges(root: string, changes: Change[]): Promise<void> {
  const done: Change[] = [];
  try {
    for (const change of changes) {
      const target = join(root, change.path);
      if (change.kind === 'delete') {
        await unlink(target);
        await removeEmptyParents(root, change.path);
      } else {
        await mkdir(dirname(target), { recursive: true });
        // 'wx': a file that appeared since the plan was made is never overwritten.
        await writeFile(target, change.content, { flag: change.kind === 'create' ? 'wx' : 'w' });
      }
      done.push(change);
    }
  } catch (error) {
    for (const change of done.reverse()) {
      const target = join(root, change.path);
      try {
        if (change.kind === 'create') {
          await unlink(target);
          await removeEmptyParents(root, change.path);
        } else {
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, change.before);
        }
      } catch {
        // Best effort: the error below says what failed.
      }
    }
    throw new InstallError(
      `could not write the project (nothing was changed): ${(error as Error).message}`,
      1,
    );
  }
}
