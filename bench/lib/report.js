// Small helpers for numbers, tables and the machine description in the report.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { REPO_ROOT } from './servers.js';

/**
 * Nearest-rank percentile of an ascending array (null when empty).
 * @param {number[]} sorted
 * @param {number} q 0..1
 */
export function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

/** @param {number[]} values */
export function distribution(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? null,
  };
}

/**
 * @param {number | null | undefined} n
 * @param {number} [digits]
 */
export function num(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * A plain text table; the first row is the header. Numbers are right-aligned.
 * @param {Array<Array<string | number>>} rows
 */
export function table(rows) {
  const [head = [], ...body] = rows.map((r) => r.map(String));
  const widths = head.map((_, i) => Math.max(...[head, ...body].map((r) => (r[i] ?? '').length)));
  const right = widths.map((_, i) => i > 0 && body.some((r) => /^[\d,.–-]+$/.test(r[i] ?? '')));
  const line = (/** @type {string[]} */ r) =>
    r.map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** @param {string} file @param {string[]} args */
function tryExec(file, args) {
  try {
    return execFileSync(file, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machine() {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // not Linux: keep os.cpus()
  }
  const commit = tryExec('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = tryExec('git', ['status', '--porcelain', '--', 'src']);
  return {
    nproc: Number(tryExec('nproc', [])) || os.availableParallelism(),
    cpuModel,
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    commit: commit === null ? null : `${commit}${dirty ? ' (src/ modified)' : ''}`,
    loadAverage1m: os.loadavg()[0] ?? 0,
  };
}
