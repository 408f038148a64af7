/** Human output of the CLI: tables that fit the terminal, colours on a terminal only, times. */
import {
  formatBytes,
  formatDuration,
  formatRelative,
  formatWhen,
  type ProgressView,
} from '../shared/domain/status-view';

export { formatBytes, formatDuration, formatRelative };

/** What the output goes to: its width (columns) and whether colours are wanted. */
export interface Term {
  /** columns available; undefined: not a terminal and no COLUMNS, nothing is cut */
  width?: number;
  color: boolean;
}

/**
 * The terminal of `stdout`: width from `stdout.columns` (a TTY) or `COLUMNS`; colour only on a TTY
 * (not TERM=dumb), never with NO_COLOR (any non-empty value, no-color.org), always with FORCE_COLOR
 * (other than 0/false).
 */
export function termOf(
  stdout: { isTTY?: boolean; columns?: number },
  env: Record<string, string | undefined>,
): Term {
  const cols =
    stdout.isTTY && stdout.columns && stdout.columns > 0
      ? stdout.columns
      : Number(env.COLUMNS) > 0
        ? Number(env.COLUMNS)
        : undefined;
  const force =
    env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR.toLowerCase() !== 'false';
  const color = env.NO_COLOR ? false : force || (!!stdout.isTTY && env.TERM !== 'dumb');
  return { width: cols, color };
}

const SGR = { red: 31, green: 32, yellow: 33, blue: 34, bold: 1, dim: 2 } as const;
/** `text` in a colour when the terminal wants colours. */
export function paint(t: Term, colour: keyof typeof SGR, text: string): string {
  return t.color ? `\x1b[${SGR[colour]}m${text}\x1b[0m` : text;
}

/** An outcome / severity → colour. */
export function colourOf(outcome: string): keyof typeof SGR | undefined {
  if (/^(Succeeded|Completed|verified|up|UP|ok)$/.test(outcome)) return 'green';
  if (/^(Failed|NeedsAttention|LeakFound|corrupt|down|DOWN|failed|FAILED)$/.test(outcome)) return 'red';
  if (/^(RolledBack|Rejected|Expired|TimedOut|Terminated|incomplete|waiting|WAITING)$/.test(outcome))
    return 'yellow';
  return undefined;
}

export function paintOutcome(t: Term, outcome: string, text = outcome): string {
  const c = colourOf(outcome);
  return c ? paint(t, c, text) : text;
}

/** Cut `s` to `n` characters, ending with "…" when cut. */
export function truncate(s: string, n: number): string {
  if (n <= 0) return '';
  return s.length <= n ? s : n === 1 ? '…' : `${s.slice(0, n - 1)}…`;
}

export interface TableOptions {
  /** the terminal width (undefined: no limit) */
  width?: number;
  /** column indexes in the order they are dropped when the table does not fit (least important first) */
  dropOrder?: number[];
  /** the column that is truncated (with …) when the table still does not fit */
  shrink?: number;
}

/**
 * Columns aligned on the widest cell, `-` for empty cells. When the table is wider than `width`
 * (kubectl-style): drop columns in `dropOrder`, then truncate the `shrink` column with "…"; a cell is
 * never wrapped. Returns the text and the headers that were dropped.
 */
export function fitTable(
  headers: string[],
  rows: Array<Array<string | number | undefined | null>>,
  o: TableOptions = {},
): { text: string; dropped: string[] } {
  let cols = headers.map((_, i) => i);
  const cells = rows.map((r) =>
    headers.map((_, i) =>
      r[i] === undefined || r[i] === null || r[i] === '' ? '-' : String(r[i]).replace(/\s*\n\s*/g, ' '),
    ),
  );
  const widthOf = (i: number) => Math.max(headers[i].length, ...cells.map((r) => r[i].length));
  const total = (cs: number[], w: (i: number) => number) =>
    cs.reduce((n, i) => n + w(i), 0) + 2 * (cs.length - 1);
  const dropped: string[] = [];
  if (o.width)
    for (const d of o.dropOrder ?? []) {
      if (total(cols, widthOf) <= o.width || cols.length <= 1) break;
      if (!cols.includes(d)) continue;
      cols = cols.filter((c) => c !== d);
      dropped.push(headers[d]);
    }
  const widths = new Map(cols.map((i) => [i, widthOf(i)]));
  if (o.width && o.shrink !== undefined && widths.has(o.shrink)) {
    const over = total(cols, (i) => widths.get(i)!) - o.width;
    if (over > 0)
      widths.set(o.shrink, Math.max(Math.min(headers[o.shrink].length, 4), widths.get(o.shrink)! - over));
  }
  const line = (r: string[]) =>
    cols
      .map((i, k) => {
        const c = truncate(r[i], widths.get(i)!);
        return k === cols.length - 1 ? c : c.padEnd(widths.get(i)!);
      })
      .join('  ')
      .trimEnd();
  return { text: [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n'), dropped };
}

/** Columns aligned on the widest cell; `-` for empty cells (no width limit). */
export function table(headers: string[], rows: Array<Array<string | number | undefined | null>>): string {
  return fitTable(headers, rows).text;
}

/** "6 Dec 2026, 05:42 CET (5m 00s ago)" in the display time zone. */
export function at(iso: string | undefined, now: Date, timeZone = 'UTC'): string {
  return formatWhen(iso, now, timeZone);
}

/** "[#####-----] 50% migrate (6/11)"; a step that waits for a person, or has no place in a runbook: its words only. */
export function progressText(p: ProgressView, width = 20): string {
  if (p.waitingForPerson || p.index === undefined || p.total === undefined || p.percent === undefined)
    return p.text ?? p.step;
  const filled = Math.round((p.percent / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(p.percent).padStart(3)}% ${p.text ?? p.step} (${p.index}/${p.total})`;
}

/** Wrap `text` at word boundaries to `width` (never inside a word unless the word alone is longer), indenting continuation lines. */
export function wrapWords(text: string, width: number | undefined, indent: string): string {
  if (!width || text.length <= width) return text;
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let cur = '';
  const room = (first: boolean) => Math.max(10, width - (first ? 0 : indent.length));
  for (const w of words) {
    const max = room(lines.length === 0);
    if (!cur) cur = w;
    else if (cur.length + 1 + w.length <= max) cur += ` ${w}`;
    else {
      lines.push(cur);
      cur = w;
    }
  }
  if (cur) lines.push(cur);
  return lines.map((l, i) => (i === 0 ? l : `${indent}${l}`)).join('\n');
}
