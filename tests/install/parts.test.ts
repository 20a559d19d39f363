// The installer's small parts on their own: the versions new migrations get, the unified diff
// (checked against diff -u), the TOML merge's refusals, and the query uninstall's next steps give
// for the user's functions that call ours.

import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeConfig, removeFromConfig } from '../../cli/install/config-toml.ts';
import { unifiedDiff } from '../../cli/install/diff.ts';
import { compareVersions, sha256, versionsAfter } from '../../cli/install/project.ts';
import { CALLERS_SQL, uninstall } from '../../cli/install/uninstall.ts';
import { init } from '../../cli/install/init.ts';
import { codeOnly, usersTableIn } from '../../cli/install/users-table.ts';
import { preparePglite } from '../helpers/db.ts';
import {
  capture,
  cleanup,
  makeProject,
  tempDir,
  tomlAt,
  USER_CONFIG,
} from './fixtures/projects.ts';

afterAll(cleanup);

describe('versionsAfter', () => {
  const PAST = new Date('2020-01-01T00:00:00Z');

  it('counts seconds as a clock does, across minutes, days and years', () => {
    expect(versionsAfter('20241231235958', 3, PAST)).toEqual([
      '20241231235959',
      '20250101000000',
      '20250101000001',
    ]);
    expect(versionsAfter('20240228235959', 1, PAST)).toEqual(['20240229000000']);
  });

  it('counts on from a version that is not a time', () => {
    expect(versionsAfter('20240101999999', 2, PAST)).toEqual(['20240102000000', '20240102000001']);
    expect(versionsAfter('7', 2, PAST)).toEqual(['20200101000000', '20200101000001']);
  });

  it("never starts before now: the project's next migration (named by the clock) sorts after ours", () => {
    const now = new Date('2026-12-01T07:43:12.700Z');
    expect(versionsAfter(undefined, 2, now)).toEqual(['20261201074312', '20261201074313']);
    expect(versionsAfter('20250301120000', 1, now)).toEqual(['20261201074312']);
    expect(versionsAfter('20301231235959', 1, now)).toEqual(['20310101000000']);
  });
});

describe('compareVersions', () => {
  it('orders releases and pre-releases', () => {
    expect(compareVersions('0.2.0', '0.10.0')).toBe(-1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(compareVersions('1.0.0-rc.1', '1.0.0')).toBe(-1);
    expect(compareVersions('0.3.0', '0.2.9')).toBe(1);
  });
});

/** Applies a unified diff the way patch does, checking every context and removed line. */
function applyPatch(text: string, diff: string): string {
  if (diff === '') return text;
  const source = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let at = 0; // next unread line of source (0-based)
  const lines = diff.replace(/\n$/, '').split('\n').slice(2);
  for (let k = 0; k < lines.length;) {
    const header = /^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$/.exec(lines[k]!);
    if (!header) throw new Error(`not a hunk header: ${lines[k]}`);
    const [oldStart, oldLen, , newLen] = header.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const start = oldLen === 0 ? oldStart : oldStart - 1;
    out.push(...source.slice(at, start));
    at = start;
    let seenOld = 0;
    let seenNew = 0;
    for (k++; k < lines.length && !lines[k]!.startsWith('@@'); k++) {
      const line = lines[k]!;
      if (line.startsWith('+')) {
        out.push(line.slice(1));
        seenNew++;
        continue;
      }
      if (source[at] !== line.slice(1)) throw new Error(`mismatch at line ${at + 1}`);
      if (line.startsWith(' ')) {
        out.push(line.slice(1));
        seenNew++;
      }
      at++;
      seenOld++;
    }
    if (seenOld !== oldLen || seenNew !== newLen) throw new Error(`wrong counts in ${header[0]}`);
  }
  out.push(...source.slice(at));
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

describe('unifiedDiff', () => {
  const hunks = (text: string) =>
    text.split('\n').filter((l) => !l.startsWith('---') && !l.startsWith('+++'));

  it('is empty for equal texts and names both sides', () => {
    expect(unifiedDiff('a\n', 'a\n', 'x', 'y')).toBe('');
    expect(unifiedDiff('a\nb\n', 'a\nc\n', 'theirs', 'ours')).toBe(
      '--- theirs\n+++ ours\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n',
    );
  });

  it("is as short as diff -u's, and patches one text into the other", async () => {
    const dir = await tempDir('diff');
    const line = fc.constantFrom('a', 'b', 'c', 'd', 'e', '', '  x');
    const text = fc.array(line, { maxLength: 40 }).map((l) => l.map((s) => `${s}\n`).join(''));
    await fc.assert(
      fc.asyncProperty(text, text, async (a, b) => {
        await writeFile(join(dir, 'a'), a);
        await writeFile(join(dir, 'b'), b);
        let expected = '';
        try {
          execFileSync('diff', ['-u', join(dir, 'a'), join(dir, 'b')], { encoding: 'utf8' });
        } catch (error) {
          expected = (error as { stdout: string }).stdout;
        }
        const ours = unifiedDiff(a, b, 'a', 'b');
        // As short as diff's (the same number of lines removed and added; diff may pick another
        // script of that length), and applying it to a gives b.
        const count = (t: string, sign: string) =>
          hunks(t).filter((l) => l.startsWith(sign)).length;
        expect(count(ours, '-')).toBe(count(expected, '-'));
        expect(count(ours, '+')).toBe(count(expected, '+'));
        expect(applyPatch(a, ours)).toBe(b);
      }),
      { numRuns: 150 },
    );
  });
});

describe('config.toml', () => {
  it('takes the block out again, leaving the file as it was', () => {
    const merged = mergeConfig(USER_CONFIG);
    expect(removeFromConfig(merged.text, sha256(merged.block)).text).toBe(USER_CONFIG);
  });

  it("uses the project's API port in the hook URLs", () => {
    const merged = mergeConfig(USER_CONFIG.replace('port = 54321', 'port = 64321'));
    expect(tomlAt(merged.text, 'auth.hook.before_user_created.uri')).toContain(
      'http://host.docker.internal:64321/functions/v1/user-sync/',
    );
  });

  it('skips the hook sections where [auth] cannot take them, and says so', () => {
    const inline = `${USER_CONFIG}\n[auth.sms]\nenable_signup = false\n`.replace(
      '[auth]\n',
      '[auth]\nhook = { send_sms = { enabled = false } }\n',
    );
    const merged = mergeConfig(inline);
    expect(merged.added).toEqual(['functions.user-sync']);
    expect(merged.notes.join('\n')).toContain('could not be added');
    expect(merged.text.startsWith(inline)).toBe(true);
  });
});

describe('finding public.users in migrations', () => {
  it('sees statements, not comments or strings', () => {
    const sql =
      "select 'create table users'; -- create table users\n/* /* nested */ create table users */";
    expect(codeOnly(sql)).not.toMatch(/create/);
    expect(codeOnly(sql).length).toBe(sql.length);
    expect(usersTableIn([{ file: 'a.sql', sql }])).toBeUndefined();
    expect(usersTableIn([{ file: 'a.sql', sql: "select E'it\\'s'; create table users (id int);" }]))
      .toEqual({ file: 'a.sql', line: 1 });
  });

  it('follows the table through files, in order', () => {
    const steps = [
      { file: '1.sql', sql: 'create table public.users (id int);' },
      { file: '2.sql', sql: 'alter table public.users set schema legacy;' },
    ];
    expect(usersTableIn(steps)).toBeUndefined();
    expect(
      usersTableIn([...steps, {
        file: '3.sql',
        sql: '\n\nalter table legacy.users set schema public;',
      }]),
    )
      .toEqual({ file: '3.sql', line: 3 });
    expect(usersTableIn([{ file: '1.sql', sql: 'create view public.users as select 1;' }])).toEqual(
      { file: '1.sql', line: 1 },
    );
    expect(
      usersTableIn([{
        file: '1.sql',
        sql: 'do $$ begin create table if not exists public.users (id int); end $$;',
      }]),
    )
      .toEqual({ file: '1.sql', line: 1 });
  });
});

// The uninstall migration's check sees what depends on ours in the catalog (a view, a default, a
// policy); a call inside a function body is text, so the next steps give the user a query.
describe("uninstall's next steps: the user's functions that call ours", () => {
  it('are named after an uninstall, with the query to run before the push', async () => {
    const dir = await makeProject();
    expect(await init({ project: dir, io: capture().io })).toBe(0);
    const c = capture();
    expect(await uninstall({ project: dir, io: c.io })).toBe(0);
    const text = c.out.join('\n');
    expect(text.replace(/\s+/g, ' ')).toContain(
      "A function or trigger of yours whose body calls ours (sync_user, resync_users, sync_my_user, user_sync.*) is not detected by the migration's check and will fail after the push.",
    );
    for (const line of CALLERS_SQL.split('\n')) expect(text).toContain(line);
  });

  it("the query lists the user's functions whose bodies call ours, and none of ours", async () => {
    const db = await preparePglite();
    try {
      await db.exec(`
        create function public.nightly_resync() returns void language plpgsql as $$
          begin perform public.resync_users(p_dry_run => true); end $$;
        create function public.on_todo_insert() returns trigger language plpgsql as $$
          begin perform user_sync.record_failure(null, 'x', 'y'); return new; end $$;
        create function public.count_todos() returns bigint language sql as
          'select 1::bigint';
      `);
      const rows = await db.query<{ oid: unknown }>(CALLERS_SQL);
      expect(rows.rows.map((r) => String(r.oid)).sort()).toEqual([
        'nightly_resync()',
        'on_todo_insert()',
      ]);
    } finally {
      await db.close();
    }
  });
});
