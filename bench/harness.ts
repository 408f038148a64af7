/**
 * Benchmark harness: `npm run bench [-- name ...]` runs `bench/<name>.ts` (compiled to dist/bench) and
 * writes `bench/results/<name>.json` with at least { name, unit, value, baseline, ratio, machine, date }.
 * The baseline is measured in the same run (never a remembered number), so the ratio is meaningful on
 * whatever machine runs it.
 */
import os from 'node:os';

export interface BenchResult {
  name: string;
  /** unit of value and baseline, e.g. "req/s", "MB/s", "ms" */
  unit: string;
  /** what the pipeline achieved */
  value: number;
  /** the practical limit measured in the same run */
  baseline: number;
  /** value / baseline (or as documented by the bench) */
  ratio: number;
  /** human description of value and baseline */
  description?: string;
  /** targets and whether they were met */
  targets?: Record<string, { target: string; actual: number | string; met: boolean }>;
  /** any further measurements */
  details?: Record<string, unknown>;
}

export interface Bench {
  name: string;
  description: string;
  run(opts: { quick: boolean; log: (msg: string) => void }): Promise<BenchResult>;
}

export function machine(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
