// The payload: what `init` and `upgrade` install, read from the package itself. In the repository
// the package root is two folders above this file (cli/install/); in the published package the
// compiled copy sits at dist/cli/install/, three folders down. packageRoot() finds it either way.

import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstallError } from './errors.ts';

export const PACKAGE_NAME = 'supabase-user-sync';

/** Where the function's runtime-neutral code goes in a user's project. */
export const SHARED_DIR = 'supabase/functions/_shared/user-sync';
export const FUNCTION_DIR = 'supabase/functions/user-sync';
export const PGTAP_DIR = 'supabase/tests/database';
export const MIGRATIONS_DIR = 'supabase/migrations';
/** Our pgTAP files get this prefix in the user's folder, so they cannot collide with theirs. */
export const PGTAP_PREFIX = 'user_sync_';

/**
 * The folder holding our package.json: the nearest one above `from` (default: this module) whose
 * name is supabase-user-sync.
 */
export function packageRoot(from: string = import.meta.url): string {
  let dir = dirname(from.startsWith('file:') ? fileURLToPath(from) : from);
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if (
          (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME
        ) {
          return dir;
        }
      } catch {
        // An unreadable package.json on the way up is someone else's: keep looking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new InstallError(`could not find the ${PACKAGE_NAME} package above ${from}`, 1);
    }
    dir = parent;
  }
}

export interface PayloadMigration {
  /** Our file name, e.g. 20261201100000_user_sync_setup.sql. */
  file: string;
  /** What follows the version: user_sync_setup.sql. The user's copy keeps it. */
  suffix: string;
  content: string;
}

export interface PayloadFile {
  /** Where it goes, relative to the user's project root, with forward slashes. */
  path: string;
  content: string;
}

export interface Payload {
  root: string;
  version: string;
  /** In the order they apply. */
  migrations: PayloadMigration[];
  /** The function (entry, import map, shared code) and the pgTAP files, as installed. */
  files: PayloadFile[];
}

const MIGRATION = /^(\d{14})_(.+\.sql)$/;

/** Files under `dir`, as paths relative to it with forward slashes, sorted. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) found.push(...await filesUnder(dir, path));
    else if (entry.isFile()) found.push(path);
  }
  return found.sort();
}

/** The import specifiers of a module (static, type-only, re-exports and dynamic with a literal). */
export function importSpecifiers(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([^'"]+)\1/gm)]
    .map((m) => m[2]!);
}

/** index.ts as installed: its imports of ../../../shared/ point at ../_shared/user-sync/. */
export function rewriteEntry(source: string): string {
  return source.replaceAll('../../../shared', '../_shared/user-sync');
}

/**
 * Every relative import of the installed function resolves to a file we install, and every bare
 * one to an entry of its import map: what `supabase functions deploy` bundles from the user's tree.
 * A failure is a broken package, not the user's doing.
 */
export function checkFunctionImports(files: PayloadFile[]): void {
  const paths = new Set(files.map((f) => f.path));
  const importMap = files.find((f) => f.path === `${FUNCTION_DIR}/deno.json`);
  const keys = Object.keys(
    (JSON.parse(importMap?.content ?? '{}') as { imports?: Record<string, string> }).imports ?? {},
  );
  const problems: string[] = [];
  for (const file of files) {
    if (!file.path.endsWith('.ts')) continue;
    for (const spec of importSpecifiers(file.content)) {
      if (spec.startsWith('.')) {
        const target = posix.normalize(posix.join(posix.dirname(file.path), spec));
        if (!paths.has(target)) {
          problems.push(`${file.path} imports ${spec} (${target} is not installed)`);
        }
      } else if (!keys.some((k) => k === spec || (k.endsWith('/') && spec.startsWith(k)))) {
        problems.push(`${file.path} imports ${spec}, which deno.json's import map does not name`);
      }
    }
  }
  if (problems.length > 0) {
    throw new InstallError(
      `the package's function does not resolve:\n  ${problems.join('\n  ')}`,
      1,
    );
  }
}

/** Reads the payload from a package root (default: this package's). */
export async function loadPayload(root: string = packageRoot()): Promise<Payload> {
  let manifest: { name?: unknown; version?: unknown };
  try {
    manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  } catch (error) {
    throw new InstallError(
      `cannot read ${join(root, 'package.json')}: ${(error as Error).message}`,
      1,
    );
  }
  if (manifest.name !== PACKAGE_NAME || typeof manifest.version !== 'string') {
    throw new InstallError(`${join(root, 'package.json')} is not ${PACKAGE_NAME}'s`, 1);
  }

  const migrations: PayloadMigration[] = [];
  for (const file of await filesUnder(join(root, 'supabase/migrations'))) {
    const match = MIGRATION.exec(file);
    if (!match) continue;
    migrations.push({
      file,
      suffix: match[2]!,
      content: await readFile(join(root, 'supabase/migrations', file), 'utf8'),
    });
  }

  const files: PayloadFile[] = [];
  const fn = join(root, 'supabase/functions/user-sync');
  files.push({
    path: `${FUNCTION_DIR}/index.ts`,
    content: rewriteEntry(await readFile(join(fn, 'index.ts'), 'utf8')),
  });
  files.push({
    path: `${FUNCTION_DIR}/deno.json`,
    content: await readFile(join(fn, 'deno.json'), 'utf8'),
  });
  for (const file of await filesUnder(join(root, 'shared'))) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    files.push({
      path: `${SHARED_DIR}/${file}`,
      content: await readFile(join(root, 'shared', file), 'utf8'),
    });
  }
  checkFunctionImports(files);

  for (const file of await filesUnder(join(root, 'supabase/tests/database'))) {
    if (!file.endsWith('.test.sql') || file.includes('/')) continue;
    files.push({
      path: `${PGTAP_DIR}/${PGTAP_PREFIX}${file}`,
      content: await readFile(join(root, 'supabase/tests/database', file), 'utf8'),
    });
  }

  if (migrations.length === 0) throw new InstallError(`${root} holds no migrations`, 1);
  return { root, version: manifest.version, migrations, files };
}
