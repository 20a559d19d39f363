// PostgreSQL's lexical layer, as far as telling code from what only looks like code goes:
// comments (nested block comments included), single-quoted strings (E'…' with backslash
// escapes), quoted identifiers and dollar-quoted bodies. One scanner for the migration runner's
// statement splitter (dev/migrations.ts) and the installer's search for a public.users of the
// user's own (cli/install/users-table.ts).

export type SqlSegmentKind = 'code' | 'comment' | 'string' | 'identifier' | 'dollar';

export interface SqlSegment {
  kind: SqlSegmentKind;
  /** Offsets into the script, end exclusive. */
  start: number;
  end: number;
}

const IDENTIFIER_CHAR = /[A-Za-z0-9_$]/;

/** The script cut into segments, in order, covering every character once. */
export function sqlSegments(sql: string): SqlSegment[] {
  const segments: SqlSegment[] = [];
  const n = sql.length;
  let codeStart = 0;
  let i = 0;
  const emit = (kind: Exclude<SqlSegmentKind, 'code'>, start: number, end: number) => {
    if (start > codeStart) segments.push({ kind: 'code', start: codeStart, end: start });
    segments.push({ kind, start, end });
    codeStart = end;
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      const end = eol === -1 ? n : eol;
      emit('comment', i, end);
      i = end;
    } else if (c === '/' && next === '*') {
      const start = i;
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      emit('comment', start, Math.min(i, n));
    } else if (c === "'") {
      // E'…' strings take backslash escapes; standard strings only doubled quotes.
      const escapes = /[eE]/.test(sql[i - 1] ?? '') && !IDENTIFIER_CHAR.test(sql[i - 2] ?? '');
      const start = i;
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'") {
          if (sql[i + 1] === "'") i += 2;
          else break;
        } else i++;
      }
      i = Math.min(i + 1, n);
      emit('string', start, i);
    } else if (c === '"') {
      const start = i;
      i++;
      while (i < n) {
        if (sql[i] === '"') {
          if (sql[i + 1] === '"') i += 2;
          else break;
        } else i++;
      }
      i = Math.min(i + 1, n);
      emit('identifier', start, i);
    } else if (c === '$' && !IDENTIFIER_CHAR.test(sql[i - 1] ?? '')) {
      // $tag$ … $tag$; `$1` is a parameter, and `a$b$` an identifier, not a quote.
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64))?.[0];
      if (tag === undefined) {
        i++;
        continue;
      }
      const close = sql.indexOf(tag, i + tag.length);
      const end = close === -1 ? n : close + tag.length;
      emit('dollar', i, end);
      i = end;
    } else i++;
  }
  if (n > codeStart) segments.push({ kind: 'code', start: codeStart, end: n });
  return segments;
}
