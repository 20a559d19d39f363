// Deno processes for the hook and cold-start parts, started by dev/deno.ts as the tests start
// them, in the tree being measured (codeRoot()), and the small baseline servers in bench/deno/.

import { resolve } from 'node:path';
import { answers200, type DenoProcess, startEntry } from '../../dev/deno.ts';
import { codeRoot } from './db.ts';

export { DENO, type DenoProcess, ENTRY, RUN_FLAGS, spawnDeno } from '../../dev/deno.ts';

/** A script of bench/deno/, by absolute path (Deno runs in codeRoot()). */
export const benchScript = (name: string) => resolve('bench/deno', name);

/**
 * Spawns `deno run` on a script (relative to codeRoot()) with the function's config and the
 * repository's node_modules, and waits, polling every 2 ms, for the first 200 on `readyPath`.
 */
export async function startDeno(
  script: string,
  env: Record<string, string>,
  readyPath: string,
): Promise<DenoProcess> {
  return await startEntry(env, { script, cwd: codeRoot(), ready: answers200(readyPath) });
}
