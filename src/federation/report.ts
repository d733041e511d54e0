import { z } from 'zod'
import { AuditReport } from './audit.ts'
import { PHASES, PhaseSeconds } from './phases.ts'

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
  /** Seconds spent in each protocol phase, summed over the agents. */
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

/** The per-round table printed at the end of a run. */
export function roundTable (report: RunReport): string {
  const metric = report.rounds[0]?.metric.name ?? 'metric'
  const header = `| round | proposals | accepts | rejects | model votes | ${metric} | train s | protocol s | wall s | peak MiB |`
  const rows = report.rounds.map(r => {
    const protocol = PHASES.filter(p => p !== 'train').reduce((sum, p) => sum + r.phases[p], 0)
    const model = r.modelVotes === undefined ? '—' : `${(100 * r.modelVotes).toFixed(0)}%`
    return `| ${r.round} | ${r.proposals} | ${r.accepts} | ${r.rejects} | ${model} | ${r.metric.value.toFixed(4)} | ${r.phases.train.toFixed(1)} | ${protocol.toFixed(1)} | ${r.wallSeconds.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} |`
  })
  return [header, '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|', ...rows].join('\n')
}

/** A learning curve: the global metric per round, as a self-contained SVG. */
export function learningCurveSvg (report: RunReport): string {
  const w = 480
  const h = 280
  const pad = 48
  const points = report.rounds.map(r => ({ x: r.round, y: r.metric.value }))
  const maxX = Math.max(1, ...points.map(p => p.x))
  const ys = points.map(p => p.y)
  const lo = Math.max(0, Math.floor((Math.min(...ys) - 0.05) * 10) / 10)
  const hi = Math.min(1, Math.ceil((Math.max(...ys) + 0.05) * 10) / 10)
  const sx = (x: number): number => pad + (x / maxX) * (w - 2 * pad)
  const sy = (y: number): number => h - pad - ((y - lo) / Math.max(1e-9, hi - lo)) * (h - 2 * pad)
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')
  const dots = points.map(p => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3"/>`).join('')
  const xTicks = points.map(p => `<text x="${sx(p.x).toFixed(1)}" y="${h - pad + 16}" text-anchor="middle">${p.x}</text>`).join('')
  const yTicks = [lo, (lo + hi) / 2, hi].map(y => `<text x="${pad - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${y.toFixed(2)}</text>`).join('')
  const metric = report.rounds[0]?.metric.name ?? 'metric'
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${w / 2}" y="18" text-anchor="middle" font-size="13">Global model ${metric} on the test split (seed ${report.seed})</text>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="black"/>
${xTicks}${yTicks}<text x="${w / 2}" y="${h - 10}" text-anchor="middle">round</text>
<path d="${path}" fill="none" stroke="#1f77b4" stroke-width="2"/><g fill="#1f77b4">${dots}</g>
</svg>
`
}
