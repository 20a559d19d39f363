import type { LogEntry, Logger } from '../shared/logger.ts';

/** Collects entries in memory: for the demo and tests, which show or assert what was logged. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return { entries, log: (entry) => void entries.push(entry) };
}
