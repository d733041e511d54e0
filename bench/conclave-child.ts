import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { RunReport } from '../src/federation/report.ts'

/** The phases that are the protocol's own work: neither the model's deciding, distilling nor training. */
export const PROTOCOL = ['publish', 'anchor', 'announce', 'fetchVerify', 'evaluate', 'vote', 'merge'] as const

/** Seconds a round's phases spent on the protocol. */
export function protocolSeconds (phases: RunReport['rounds'][number]['phases']): number {
  return PROTOCOL.reduce((s, p) => s + (phases[p] ?? 0), 0)
}

/**
 * `conclave run ARGS --out DIR --force` in a fresh process, as a benchmark measures it; its
 * report, and its user + system CPU seconds (bash's \`time\`, which a loaded machine does not
 * inflate as it does wall time).
 */
export async function runConclave (args: readonly string[], dir: string): Promise<{ report: RunReport, cpuSeconds: number }> {
  const argv = ['bin/conclave.js', 'run', ...args, '--out', dir, '--force']
  const child = await promisify(execFile)('bash', ['-c', 'TIMEFORMAT="cpu %U %S"; time "$0" "$@"', process.execPath, ...argv], { maxBuffer: 64 * 2 ** 20 })
  const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as RunReport
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(child.stderr)
  return { report, cpuSeconds: m === null ? Number.NaN : Number(m[1]) + Number(m[2]) }
}

/** The machine's load average over 1, 5 and 15 minutes as /proc/loadavg gives it ('' where there is none): benches print it beside their figures. */
export async function loadAverage (): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '')).split(' ').slice(0, 3).join(' ')
}

/** A share as a percentage with one decimal. */
export function percent (x: number): string {
  return `${(100 * x).toFixed(1)}%`
}
