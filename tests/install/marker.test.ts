// upgrade and uninstall on an install that was tampered with or damaged: supabase/user-sync.json
// is what they go by, so a marker of the wrong shape, or one naming a path outside the project's
// supabase/ folder, stops them (exit 2, saying what is wrong) before they touch a file; and a file
// of the install they cannot read stops them with its path, not an "unexpected error".

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../cli/main.ts';
import { type Marker, sha256 } from '../../cli/install/project.ts';
import {
  capture,
  cleanup,
  payloadCopy,
  REPO,
  tempDir,
  treeHash,
  userProjectFiles,
} from './fixtures/projects.ts';

afterAll(cleanup);

/** An older package to install from, so that an upgrade to this one has something to do. */
let oldRoot: string;
beforeAll(async () => {
  oldRoot = await payloadCopy('0.2.0');
});

async function cli(args: string[], payloadRoot = REPO) {
  const c = capture();
  const code = await run(args, { io: c.io, payloadRoot });
  return { code, ...c };
}

/**
 * A project installed by the older package, in a folder of its own inside `outer`, so that
 * `../outside.txt` from the project names outer/outside.txt, a file of this test's.
 */
async function installed(): Promise<{ outer: string; dir: string }> {
  const outer = await tempDir('outer');
  const dir = join(outer, 'project');
  for (const [path, content] of Object.entries(userProjectFiles())) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  expect((await cli(['init', '--project', dir], oldRoot)).code).toBe(0);
  return { outer, dir };
}

const markerFile = (dir: string) => join(dir, 'supabase/user-sync.json');
const readMarkerJson = async (dir: string) =>
  JSON.parse(await readFile(markerFile(dir), 'utf8')) as Marker;

describe('a marker naming a path outside supabase/', () => {
  it.each(['upgrade', 'uninstall'])(
    '%s refuses it (exit 2) and leaves the file alone',
    async (command) => {
      const { outer, dir } = await installed();
      const outside = join(outer, 'outside.txt');
      await writeFile(outside, 'not yours\n');
      const marker = await readMarkerJson(dir);
      marker.files['../outside.txt'] = sha256('not yours\n');
      await writeFile(markerFile(dir), JSON.stringify(marker));
      const hash = await treeHash(dir);

      const { code, err } = await cli([command, '--project', dir]);
      expect(code).toBe(2);
      expect(err.join('\n')).toContain(
        'supabase/user-sync.json is not a supabase-user-sync install marker: files has "../outside.txt", which is not a path inside supabase/',
      );
      expect(await readFile(outside, 'utf8')).toBe('not yours\n');
      expect(await treeHash(dir)).toBe(hash);
    },
  );

  it.each([
    '/etc/hosts',
    'supabase/../../outside.txt',
    'supabase/functions/../../../outside.txt',
    'supabase\\..\\..\\outside.txt',
    'README.md',
    'C:\\outside.txt',
  ])('%s is refused', async (key) => {
    const { dir } = await installed();
    const marker = await readMarkerJson(dir);
    marker.files[key] = sha256('x');
    await writeFile(markerFile(dir), JSON.stringify(marker));
    const { code, err } = await cli(['uninstall', '--project', dir]);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(`files has ${JSON.stringify(key)}, which is not a path`);
  });
});

describe('a marker of the wrong shape', () => {
  const edits: Array<[string, (m: Record<string, unknown>) => unknown, string]> = [
    ['null', () => null, 'it holds null, not an object'],
    ['a list', () => [], 'it holds a list, not an object'],
    [
      'another package',
      (m) => ({ ...m, package: 'other' }),
      'package is "other", not "supabase-user-sync"',
    ],
    [
      'version "abc"',
      (m) => ({ ...m, version: 'abc' }),
      'version "abc" is not a version like 0.3.0',
    ],
    ['version 3', (m) => ({ ...m, version: 3 }), 'version 3 is not a version like 0.3.0'],
    [
      'migrations [null]',
      (m) => ({ ...m, migrations: [null] }),
      'migrations[0] is not an object with the strings ours, file and sha256',
    ],
    [
      'migrations as names',
      (m) => ({ ...m, migrations: (m.migrations as Marker['migrations']).map((x) => x.ours) }),
      'migrations[0] is not an object with the strings ours, file and sha256',
    ],
    [
      'migrations missing',
      (m) => ({ ...m, migrations: undefined }),
      'migrations is not a list',
    ],
    ['files a list', (m) => ({ ...m, files: [] }), 'files is not an object of paths and sha256s'],
    [
      'a file without a sha256',
      (m) => ({ ...m, files: { ...(m.files as object), 'supabase/functions/x.ts': 'abc' } }),
      'files["supabase/functions/x.ts"] is not a sha256 (64 hex digits)',
    ],
    [
      'config of the wrong shape',
      (m) => ({ ...m, config: 'yes' }),
      'config is not an object with added (a list of table names) and block (a sha256 or null)',
    ],
  ];

  it.each(edits)('%s: upgrade and uninstall refuse (exit 2), changing nothing', async (
    _name,
    edit,
    problem,
  ) => {
    const { dir } = await installed();
    const marker = await readMarkerJson(dir);
    await writeFile(
      markerFile(dir),
      JSON.stringify(edit(marker as unknown as Record<string, unknown>)),
    );
    const hash = await treeHash(dir);
    for (const command of ['upgrade', 'uninstall']) {
      const { code, err } = await cli([command, '--project', dir]);
      expect(err.join('\n'), command).toContain(
        `supabase-user-sync ${command}: supabase/user-sync.json is not a supabase-user-sync install marker: ${problem}.`,
      );
      expect(code, command).toBe(2);
      expect(await treeHash(dir)).toBe(hash);
    }
  });

  it('takes a pre-release version, and a marker without config (as 0.2.0 may have)', async () => {
    const { dir } = await installed();
    const marker = await readMarkerJson(dir);
    const { config: _config, ...rest } = marker;
    await writeFile(markerFile(dir), JSON.stringify({ ...rest, version: '0.2.1-rc.1' }));
    const { code, err } = await cli(['upgrade', '--dry-run', '--project', dir]);
    expect(err).toEqual([]);
    expect(code).toBe(0);
  });
});

describe('a file of the install that cannot be read', () => {
  it('upgrade names it (exit 2): one of ours that is now a folder', async () => {
    const { dir } = await installed();
    const path = 'supabase/functions/user-sync/index.ts';
    await rm(join(dir, path));
    await mkdir(join(dir, path));
    const { code, err } = await cli(['upgrade', '--project', dir]);
    expect(err.join('\n')).toContain(`cannot read ${path}: it is a folder, not a file`);
    expect(code).toBe(2);
  });

  it('uninstall names it (exit 2): config.toml that is now a folder', async () => {
    const { dir } = await installed();
    await rm(join(dir, 'supabase/config.toml'));
    await mkdir(join(dir, 'supabase/config.toml'));
    const hash = await treeHash(dir);
    const { code, err } = await cli(['uninstall', '--project', dir]);
    expect(err.join('\n')).toContain(
      'cannot read supabase/config.toml: it is a folder, not a file',
    );
    expect(code).toBe(2);
    expect(await treeHash(dir)).toBe(hash);
  });
});
