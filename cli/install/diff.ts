// A unified diff of two texts (diff -u's format, three lines of context), to show a user what an
// upgrade changes in a file they edited and what init adds to their config.toml. Small files only:
// the line-level LCS is quadratic in the lines that differ, after the common head and tail.

type Op = { kind: ' ' | '-' | '+'; line: string };

function lines(text: string): string[] {
  if (text === '') return [];
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}

/** Larger middles than this (lines × lines) are shown as all removed, then all added. */
const MAX_CELLS = 4_000_000;

function editScript(a: string[], b: string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head && tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const ops: Op[] = a.slice(0, head).map((line) => ({ kind: ' ', line }));

  if (x.length * y.length > MAX_CELLS) {
    ops.push(...x.map((line) => ({ kind: '-' as const, line })));
    ops.push(...y.map((line) => ({ kind: '+' as const, line })));
  } else {
    // lcs[i][j]: the longest common subsequence of x[i..] and y[j..].
    const width = y.length + 1;
    const lcs = new Uint32Array((x.length + 1) * width);
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) {
        lcs[i * width + j] = x[i] === y[j]
          ? lcs[(i + 1) * width + j + 1]! + 1
          : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        ops.push({ kind: ' ', line: x[i]! });
        i++;
        j++;
      } else if (
        i < x.length && (j === y.length || lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!)
      ) {
        // Removals before additions where either keeps the script shortest, as diff -u does.
        ops.push({ kind: '-', line: x[i]! });
        i++;
      } else {
        ops.push({ kind: '+', line: y[j]! });
        j++;
      }
    }
  }
  ops.push(...a.slice(a.length - tail).map((line) => ({ kind: ' ' as const, line })));
  return ops;
}

/**
 * The unified diff from `before` to `after`, headed `--- fromLabel` / `+++ toLabel`; '' when they
 * are equal.
 */
export function unifiedDiff(
  before: string,
  after: string,
  fromLabel: string,
  toLabel: string,
  context = 3,
): string {
  if (before === after) return '';
  const ops = editScript(lines(before), lines(after));
  const out = [`--- ${fromLabel}`, `+++ ${toLabel}`];
  // Positions (1-based) of each op in the old and new text.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 1;
  let n = 1;
  for (const op of ops) {
    oldAt.push(o);
    newAt.push(n);
    if (op.kind !== '+') o++;
    if (op.kind !== '-') n++;
  }
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    // A hunk: from `context` lines before this change to `context` lines after the last change
    // that is no more than 2 × context unchanged lines from the one before it.
    const start = Math.max(0, k - context);
    let end = k;
    let last = k;
    while (end < ops.length) {
      if (ops[end]!.kind !== ' ') last = end;
      else if (end - last > 2 * context) break;
      end++;
    }
    end = Math.min(ops.length, last + context + 1);
    const hunk = ops.slice(start, end);
    const oldLen = hunk.filter((op) => op.kind !== '+').length;
    const newLen = hunk.filter((op) => op.kind !== '-').length;
    const oldStart = oldLen === 0 ? oldAt[start]! - 1 : oldAt[start]!;
    const newStart = newLen === 0 ? newAt[start]! - 1 : newAt[start]!;
    out.push(`@@ -${oldStart},${oldLen} +${newStart},${newLen} @@`);
    for (const op of hunk) out.push(`${op.kind}${op.line}`);
    k = end;
  }
  const noNewline = (text: string) => text !== '' && !text.endsWith('\n');
  if (noNewline(before) || noNewline(after)) {
    out.push('\\ (one of the files does not end with a newline)');
  }
  return `${out.join('\n')}\n`;
}
