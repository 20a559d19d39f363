// Plain-text tables for the demo and the resync CLI: Markdown pipe tables, so they read well in
// a terminal and paste as-is into an issue or a pull request. Numbers are right-aligned.

export type Cell = string | number | boolean | null | undefined;

export interface Column<Row> {
  header: string;
  value: (row: Row) => Cell;
  /** Right-align (default: numbers right, everything else left). */
  align?: 'left' | 'right';
}

function text(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return '—';
  return String(cell).replaceAll('|', '\\|').replaceAll('\n', ' ');
}

export function renderTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const right = columns.map((c, i) =>
    c.align ? c.align === 'right' : cells.length > 0 && cells.every((r) => typeof r[i] === 'number')
  );
  const shown = cells.map((r) => r.map(text));
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, 3, ...shown.map((r) => [...r[i]!].length))
  );
  const pad = (s: string, i: number) => {
    const gap = ' '.repeat(widths[i]! - [...s].length);
    return right[i] ? gap + s : s + gap;
  };
  const line = (parts: string[]) => `| ${parts.map(pad).join(' | ')} |`;
  const rule = `|${
    widths.map((w, i) => right[i] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`).join('|')
  }|`;
  return [line(columns.map((c) => c.header)), rule, ...shown.map(line)].join('\n');
}
