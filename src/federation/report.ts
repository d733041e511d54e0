import { join } from 'node:path'
import { z } from 'zod'
import { readPlainFile } from '../core/files.ts'
import { AuditReport } from './audit.ts'
import { chartSvg, runCharts, type ChartId } from './charts.ts'
import { PHASES, PhaseSeconds } from './phases.ts'
import type { RunView } from './run-view.ts'

export const RoundReport = z.object({
  round: z.number().int().nonnegative(),
  proposals: z.number().int(),
  accepts: z.number().int(),
  rejects: z.number().int(),
  /** Share of the round's votes a model decided (`decidedBy` other than policy); absent when no vote of the round says who decided. */
  modelVotes: z.number().min(0).max(1).optional(),
  /** The global model's metric on the task's held-out test split, after the round. */
  metric: z.object({ name: z.string(), value: z.number() }),
  /** sha-256 of the global model after the round. */
  modelHash: z.string(),
  /** Seconds spent in each phase by the agents, each instant counted once (in a simulation they share one phase timer). */
  phases: PhaseSeconds,
  wallSeconds: z.number(),
  /** Peak resident memory of the process so far, in MiB. */
  peakRssMiB: z.number()
})
export type RoundReport = z.infer<typeof RoundReport>

/** `DIR/report.json`: what a run did, measured. */
export const RunReport = z.object({
  conclave: z.string(),
  startedAt: z.string(),
  seed: z.number().int(),
  backend: z.string(),
  config: z.record(z.string(), z.unknown()),
  agents: z.array(z.object({
    name: z.string(),
    did: z.string(),
    trainExamples: z.number().int(),
    valExamples: z.number().int(),
    accepted: z.number().int(),
    rejected: z.number().int(),
    rejections: z.array(z.object({ block: z.string(), error: z.string() })),
    /** Agents only: protocol tool calls by tool name. */
    toolCalls: z.record(z.string(), z.number().int()).optional(),
    /** Agents only: model calls, valid at once, retried once, handed to the policy. */
    llm: z.object({ calls: z.number().int(), valid: z.number().int(), retried: z.number().int(), fallback: z.number().int() }).optional(),
    /** Agents only: per tool, the steps its model took and those the protocol policy took. */
    decisions: z.record(z.string(), z.object({ model: z.number().int(), policy: z.number().int() })).optional(),
    /** Tasks learned by distillation: answers paid for, answers from the cache, tokens paid, questions left unanswered. */
    teacher: z.object({ asked: z.number().int(), cached: z.number().int(), tokens: z.number().int(), undistilled: z.number().int() }).optional()
  })),
  rounds: z.array(RoundReport),
  /** Fraction of proposals the quorum rejected. */
  rejectionRate: z.number(),
  modelHash: z.string(),
  wallSeconds: z.number(),
  audit: AuditReport.optional()
})
export type RunReport = z.infer<typeof RunReport>

/** A run's report.json is read up to this size: a 100-agent run's is a few MiB. */
export const MAX_REPORT_BYTES = 64 * 1024 * 1024

/** DIR/report.json as a run wrote it; undefined when there is none yet, or it is half-written, not a plain file or not a Conclave report. */
export async function readRunReport (dir: string): Promise<RunReport | undefined> {
  const text = (await readPlainFile(join(dir, 'report.json'), MAX_REPORT_BYTES).catch(() => undefined))?.toString('utf8')
  if (text === undefined) return undefined
  try {
    return RunReport.safeParse(JSON.parse(text)).data
  } catch {
    return undefined
  }
}

/** The per-round table printed at the end of a run. */
export function roundTable (report: RunReport): string {
  const metric = report.rounds[0]?.metric.name ?? 'metric'
  const header = `| round | proposals | accepts | rejects | model votes | ${metric} | model s | train s | protocol s | wall s | peak MiB |`
  const rows = report.rounds.map(r => {
    const protocol = PHASES.filter(p => p !== 'train' && p !== 'model').reduce((sum, p) => sum + r.phases[p], 0)
    const model = r.modelVotes === undefined ? '—' : `${(100 * r.modelVotes).toFixed(0)}%`
    return `| ${r.round} | ${r.proposals} | ${r.accepts} | ${r.rejects} | ${model} | ${r.metric.value.toFixed(4)} | ${r.phases.model.toFixed(1)} | ${r.phases.train.toFixed(1)} | ${protocol.toFixed(1)} | ${r.wallSeconds.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} |`
  })
  // One alignment cell per header cell: a short row would make Markdown drop the table.
  return [header, header.replace(/[^|]+\|/g, '---:|'), ...rows].join('\n')
}

/** The plots report.md shows, each an SVG file beside it: what the quorum did with every update, and who it trusted. */
export const REPORT_PLOTS = [
  { file: 'learning-curve.svg', chart: 'learning', caption: 'learning curve, rejected updates marked' },
  { file: 'votes.svg', chart: 'votes', caption: 'votes: voter × proposal' },
  { file: 'reputation.svg', chart: 'reputation', caption: 'reputation over rounds' }
] as const satisfies ReadonlyArray<{ file: string, chart: ChartId, caption: string }>

/**
 * report.md and its plots, from the report and what the run's ledger shows: the round
 * table, then the learning curve with rejected updates marked, the vote heatmap and
 * reputation over rounds, rendered to SVG offline with Vega-Lite.
 */
export async function reportFiles (report: RunReport, view: RunView): Promise<Map<string, string>> {
  const charts = runCharts(view, report)
  const files = new Map<string, string>()
  const lines = [`# Conclave run (seed ${report.seed})`, '', roundTable(report), '', `Rejection rate: ${(100 * report.rejectionRate).toFixed(1)}% · final model sha-256 ${report.modelHash}`]
  for (const plot of REPORT_PLOTS) {
    const chart = charts.find(c => c.id === plot.chart)
    if (chart === undefined) continue
    files.set(plot.file, await chartSvg(chart))
    lines.push('', `![${plot.caption}](${plot.file})`)
  }
  files.set('report.md', lines.join('\n') + '\n')
  return files
}
