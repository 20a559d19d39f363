// `supabase-user-sync upgrade` from an install made with an older package: a copy of ours cut back
// to 0.2.0 (its last migration removed, three files as they were, files since dropped) and one at
// a later version. Upgrade adds exactly the missing migration after the project's newest, replaces
// what the user left alone, shows and keeps what they changed (and leaves their edit to a file this
// version does not change), and refuses to go backwards or to start from 0.1.0.

import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../cli/main.ts';
import { loadPayload } from '../../cli/install/payload.ts';
import { compareVersions, type Marker, sha256 } from '../../cli/install/project.ts';
import {
  capture,
  cleanup,
  makeProject,
  payloadCopy,
  readTree,
  REPO,
  treeHash,
} from './fixtures/projects.ts';

const OLD = '0.2.0';
let oldRoot: string;
let newRoot: string;
let newVersion: string;
let dropped: string;

afterAll(cleanup);

beforeAll(async () => {
  const ours = (await readdir(join(REPO, 'supabase/migrations'))).filter((f) => f.endsWith('.sql'))
    .sort();
  dropped = ours[ours.length - 1]!;
  oldRoot = await payloadCopy(OLD, async (root) => {
    await rm(join(root, 'supabase/migrations', dropped));
    // Files that changed since (the tests edit the entry and a pgTAP file; an edit to a file we
    // did not change is kept as it is), and one that is gone since (one the user keeps unchanged,
    // one they edited).
    for (
      const [path, comment] of [
        ['shared/timeouts.ts', '//'],
        ['supabase/functions/user-sync/index.ts', '//'],
        ['supabase/tests/database/05_resync.test.sql', '--'],
      ] as const
    ) {
      await writeFile(
        join(root, path),
        `${comment} 0.2.0\n` + await readFile(join(REPO, path), 'utf8'),
      );
    }
    await writeFile(join(root, 'shared/legacy.ts'), 'export const legacy = 1;\n');
    await writeFile(join(root, 'shared/legacy-edited.ts'), 'export const legacyEdited = 1;\n');
  });
  // The working tree's package if it is newer than the fixture, else a copy of it that is.
  const tree = (await loadPayload()).version;
  newVersion = compareVersions(tree, OLD) > 0 ? tree : '0.3.0';
  newRoot = newVersion === tree ? REPO : await payloadCopy(newVersion);
});

async function cli(args: string[], payloadRoot: string) {
  const c = capture();
  const code = await run(args, { io: c.io, payloadRoot });
  return { code, ...c };
}

/** A project with the 0.2.0 fixture installed, and a migration of the user's made since. */
async function oldInstall(): Promise<string> {
  const dir = await makeProject();
  expect((await cli(['init', '--project', dir], oldRoot)).code).toBe(0);
  // Dated ahead of any clock, so "after the newest" names one version whatever the time is.
  await writeFile(
    join(dir, 'supabase/migrations/29990401000000_todo_tags.sql'),
    'alter table public.todos add column tags text[];\n',
  );
  return dir;
}

describe('upgrade from 0.2.0', () => {
  it('adds exactly the missing migration, after the newest, and updates the files', async () => {
    const dir = await oldInstall();
    // The user edits the entry and a file we no longer ship.
    const entry = join(dir, 'supabase/functions/user-sync/index.ts');
    const theirs = (await readFile(entry, 'utf8')) + '// my tweak\n';
    await writeFile(entry, theirs);
    await writeFile(
      join(dir, 'supabase/functions/_shared/user-sync/legacy-edited.ts'),
      '// mine now\n',
    );
    const before = await readTree(dir);

    const { code, out, err } = await cli(['upgrade', '--project', dir], newRoot);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const after = await readTree(dir);
    const text = out.join('\n');

    // One new migration: ours that 0.2.0 lacked, after the user's newest (29990401000000).
    const added = Object.keys(after).filter((p) => !(p in before)).sort();
    const suffix = dropped.slice(15);
    expect(added.filter((p) => p.startsWith('supabase/migrations/'))).toEqual([
      `supabase/migrations/29990401000001_${suffix}`,
    ]);
    expect(after[`supabase/migrations/29990401000001_${suffix}`]).toBe(
      await readFile(join(REPO, 'supabase/migrations', dropped), 'utf8'),
    );

    // The edited entry: a diff (theirs → ours) first, theirs kept, ours written.
    expect(text).toContain('--- supabase/functions/user-sync/index.ts (yours)');
    expect(text).toContain(
      `+++ supabase/functions/user-sync/index.ts (supabase-user-sync ${newVersion})`,
    );
    expect(text).toMatch(/^-\/\/ my tweak$/m);
    expect(after['supabase/functions/user-sync/index.ts.user-sync-backup']).toBe(theirs);
    const payload = await loadPayload(newRoot);
    const ours = (path: string) => payload.files.find((f) => f.path === path)!.content;
    expect(after['supabase/functions/user-sync/index.ts']).toBe(
      ours('supabase/functions/user-sync/index.ts'),
    );

    // A file the user left alone is replaced without a backup.
    expect(after['supabase/functions/_shared/user-sync/timeouts.ts']).toBe(
      ours('supabase/functions/_shared/user-sync/timeouts.ts'),
    );
    expect(after['supabase/functions/_shared/user-sync/timeouts.ts.user-sync-backup'])
      .toBeUndefined();
    expect(text).not.toContain('timeouts.ts (yours)');

    // Gone since 0.2.0: removed while unchanged, kept (and said) once edited.
    expect(after['supabase/functions/_shared/user-sync/legacy.ts']).toBeUndefined();
    expect(after['supabase/functions/_shared/user-sync/legacy-edited.ts']).toBe('// mine now\n');
    expect(text).toContain(
      'supabase/functions/_shared/user-sync/legacy-edited.ts is no longer part of supabase-user-sync, but you changed it, so it stays',
    );

    // Nothing else new, and the user's own files untouched.
    expect(added).toEqual([
      'supabase/functions/user-sync/index.ts.user-sync-backup',
      `supabase/migrations/29990401000001_${suffix}`,
    ]);
    for (
      const path of [
        'supabase/config.toml',
        'supabase/migrations/29990401000000_todo_tags.sql',
        'supabase/functions/hello/index.ts',
      ]
    ) {
      expect(after[path]).toBe(before[path]);
    }

    // The marker: the new version, every migration with the name it has here, the new files.
    const marker = JSON.parse(after['supabase/user-sync.json']!) as Marker;
    expect(marker.version).toBe(newVersion);
    expect(marker.migrations.map((m) => m.ours)).toEqual(payload.migrations.map((m) => m.file));
    expect(marker.migrations.at(-1)!.file).toBe(`29990401000001_${suffix}`);
    expect(Object.keys(marker.files).sort()).toEqual(payload.files.map((f) => f.path).sort());
    for (const [path, hash] of Object.entries(marker.files)) {
      expect(hash, path).toBe(sha256(after[path]!));
    }
    expect(text).toContain('npx supabase db push');

    // Once more: already there.
    const hash = await treeHash(dir);
    const again = await cli(['upgrade', '--project', dir], newRoot);
    expect(again.code).toBe(0);
    expect(again.out.join('\n')).toContain(`already at ${newVersion}`);
    expect(await treeHash(dir)).toBe(hash);

    // Uninstalled later: the backup is the user's, and stays.
    const removed = await cli(['uninstall', '--project', dir], newRoot);
    expect(removed.code).toBe(0);
    expect(removed.out.join('\n')).toContain(
      'supabase/functions/user-sync/index.ts.user-sync-backup (your version, kept by an upgrade) stays',
    );
    expect((await readTree(dir))['supabase/functions/user-sync/index.ts.user-sync-backup']).toBe(
      theirs,
    );
  });

  it('keeps, untouched, a file the user edited that this version does not change', async () => {
    const dir = await oldInstall();
    // shared/bearer.ts is the same in 0.2.0 and in the new version.
    const path = 'supabase/functions/_shared/user-sync/bearer.ts';
    const recorded =
      (JSON.parse(await readFile(join(dir, 'supabase/user-sync.json'), 'utf8')) as Marker)
        .files[path]!;
    const theirs = (await readFile(join(dir, path), 'utf8')) + '// mine\n';
    await writeFile(join(dir, path), theirs);

    const { code, out, err } = await cli(['upgrade', '--project', dir], newRoot);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const after = await readTree(dir);
    const text = out.join('\n');
    expect(after[path]).toBe(theirs);
    expect(after[`${path}.user-sync-backup`]).toBeUndefined();
    expect(text).not.toContain(`${path} (yours)`);
    expect(text).toContain(
      `Note: ${path}: you changed it, and ${newVersion} does not change it, so yours is kept as it is.`,
    );
    // The marker keeps what we wrote, so uninstall still sees the file as the user's.
    const marker = JSON.parse(after['supabase/user-sync.json']!) as Marker;
    expect(marker.files[path]).toBe(recorded);
    expect(recorded).toBe(sha256(await readFile(join(REPO, 'shared/bearer.ts'), 'utf8')));
  });

  it('--dry-run shows the diff and the plan and writes nothing', async () => {
    const dir = await oldInstall();
    await writeFile(join(dir, 'supabase/tests/database/user_sync_05_resync.test.sql'), '-- mine\n');
    const hash = await treeHash(dir);
    const { code, out } = await cli(['upgrade', '--dry-run', '--project', dir], newRoot);
    expect(code).toBe(0);
    expect(await treeHash(dir)).toBe(hash);
    const text = out.join('\n');
    expect(text).toContain('--- supabase/tests/database/user_sync_05_resync.test.sql (yours)');
    expect(text).toContain(
      'create  supabase/tests/database/user_sync_05_resync.test.sql.user-sync-backup',
    );
    expect(text).toContain(`create  supabase/migrations/29990401000001_${dropped.slice(15)}`);
    expect(text).toContain('Would change (dry run, nothing written)');
  });
});

describe('upgrade refuses', () => {
  it('without an install (exit 2)', async () => {
    const dir = await makeProject();
    const { code, err } = await cli(['upgrade', '--project', dir], newRoot);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('run `npx supabase-user-sync init` first');
  });

  it('to downgrade (exit 2), changing nothing', async () => {
    const dir = await makeProject();
    expect((await cli(['init', '--project', dir], newRoot)).code).toBe(0);
    const hash = await treeHash(dir);
    const { code, err } = await cli(['upgrade', '--project', dir], oldRoot);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(
      `refusing to downgrade: ${newVersion} is installed and this package is ${OLD}`,
    );
    expect(await treeHash(dir)).toBe(hash);
  });

  it('a 0.1.0 install (exit 2), changing nothing', async () => {
    const dir = await oldInstall();
    const markerPath = join(dir, 'supabase/user-sync.json');
    const marker = JSON.parse(await readFile(markerPath, 'utf8')) as Marker;
    await writeFile(markerPath, JSON.stringify({ ...marker, version: '0.1.0' }));
    const hash = await treeHash(dir);
    const { code, err } = await cli(['upgrade', '--project', dir], newRoot);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(
      '0.1.0 installs cannot be upgraded: that schema was replaced; see docs/migrating.md',
    );
    expect(await treeHash(dir)).toBe(hash);
  });
});
