/**
 * One JSON object per line. What goes in is chosen field by field by the callers (route, user
 * id, outcome, duration, request id, error kind): never a header, a body, a secret, a token, a
 * password hash or a whole auth row.
 */
export interface LogEntry {
  level: 'info' | 'warn' | 'error';
  event: string;
  [field: string]: string | number | boolean | null | undefined;
}

export interface Logger {
  log(entry: LogEntry): void;
}

export function jsonLogger(write: (line: string) => void = (line) => console.log(line)): Logger {
  return {
    log(entry) {
      write(JSON.stringify({ time: new Date().toISOString(), ...entry }));
    },
  };
}
