// The rooms of the tree (README "Layout"): the product (supabase/, shared/, cli/) never imports
// from dev/, tests/ or bench/, and shared/ (deployed) imports only itself and packages.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(new URL('../', import.meta.url).pathname);

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.(ts|mts|js)$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every relative import of a file, as a path from the repository root. */
async function localImports(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*(['"])(\.{1,2}\/[^'"]+)\1/g)];
  return specifiers.map((m) => relative(ROOT, resolve(ROOT, dirname(file), m[2]!)));
}

async function importsOutside(dirs: string[], allowed: RegExp): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    for (const file of await sources(dir)) {
      for (const target of await localImports(file)) {
        if (!allowed.test(target)) found.push(`${file} imports ${target}`);
      }
    }
  }
  return found;
}

describe('layout', () => {
  it('shared/ and the function entry import only shared/ and packages', async () => {
    expect(await importsOutside(['shared', 'supabase/functions'], /^(shared|supabase)\//))
      .toEqual([]);
  });

  it('cli/ imports only cli/ and shared/', async () => {
    expect(await importsOutside(['cli'], /^(cli|shared)\//)).toEqual([]);
  });

  it('dev/ never imports tests/ or bench/', async () => {
    expect(await importsOutside(['dev'], /^(dev|shared|cli)\//)).toEqual([]);
  });

  it('the checks can fail: a test file importing dev/ is reported', async () => {
    expect(await importsOutside(['tests/function'], /^(shared|tests)\//)).not.toEqual([]);
  });
});
