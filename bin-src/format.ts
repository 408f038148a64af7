/** Human output of the CLI: aligned tables, progress bars, times. */
import { formatBytes, formatDuration, formatRelative, type ProgressView } from '../shared/domain/status-view';

export { formatBytes, formatDuration, formatRelative };

/** Columns aligned on the widest cell; `-` for empty cells. */
export function table(headers: string[], rows: Array<Array<string | number | undefined | null>>): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n');
}

/** "2026-11-27 19:05 UTC (5m 00s ago)" */
export function at(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC (${formatRelative(iso, now)})`;
}

/** "[#####-----] 50% migrate (6/11)" or "migrate" when the step has no place in a runbook. */
export function progressText(p: ProgressView, width = 20): string {
  if (p.index === undefined || p.total === undefined || p.percent === undefined) return p.step;
  const filled = Math.round((p.percent / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(p.percent).padStart(3)}% ${p.step} (${p.index}/${p.total})`;
}
