// A copy of the repository without tests/ and bench/ (node_modules linked, not copied): what
// `npm start` and `npm run db:migrate` must work from, since the product never reads its tests.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface ProductCopy {
  dir: string;
  remove(): Promise<void>;
}

export async function productCopy(): Promise<ProductCopy> {
  const dir = await mkdtemp(join(tmpdir(), 'usync-product-'));
  const { stdout } = await promisify(execFile)('git', ['ls-files', '-co', '--exclude-standard'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  // node_modules is linked below (a clone may hold it as a symlink, which `node_modules/` in
  // .gitignore does not match).
  const files = stdout.split('\n').filter((f) => f && !/^(tests|bench)\/|^node_modules$/.test(f));
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(join(ROOT, file), join(dir, file)).catch((e) => {
      // A file git lists but the working tree deleted is not part of the copy.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    });
  }
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
