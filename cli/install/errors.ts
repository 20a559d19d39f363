// What the installer's commands answer: an exit code and, for the expected failures, a sentence a
// person can act on. The commands print through an Output, so the tests read what a user reads.

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A failure the user can fix (a missing config.toml, a foreign public.users, a file in the way):
 * exit 2 unless said otherwise, and only the message is printed.
 */
export class InstallError extends Error {
  constructor(message: string, readonly exitCode: ExitCode = EXIT.usage) {
    super(message);
    this.name = 'InstallError';
  }
}

/** Where a command prints: `out` for what it did and what comes next, `err` for problems. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const consoleOutput: Output = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** Runs a command body: an InstallError becomes its message and exit code, anything else 1. */
export async function runCommand(
  name: string,
  io: Output,
  body: () => Promise<ExitCode>,
): Promise<ExitCode> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof InstallError) {
      io.err(`supabase-user-sync ${name}: ${error.message}`);
      return error.exitCode;
    }
    io.err(
      `supabase-user-sync ${name}: unexpected error: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    return EXIT.failed;
  }
}
