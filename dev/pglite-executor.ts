// Development and tests only: the deployed function never imports this file (PGlite is a
// devDependency, tens of megabytes of WebAssembly). tests/function/deno-entry.test.ts checks.
import type { PGlite } from '@electric-sql/pglite';
import { type Executor, toGatewayError } from '../shared/gateways/direct.ts';

/** The direct gateway's executor over an in-process PGlite database. */
export function pgliteExecutor(db: PGlite): Executor {
  return {
    async begin(fn) {
      try {
        return await db.transaction((tx) =>
          fn({
            exec: async (text) => {
              await tx.exec(text);
            },
            query: async (text, params) => (await tx.query(text, params)).rows as never,
          })
        );
      } catch (err) {
        throw toGatewayError(err);
      }
    },
    close: () => Promise.resolve(),
  };
}
