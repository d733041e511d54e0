/**
 * `node bench/vote-rules.ts [--seeds 11,12] [--tasks classify,ner,qa] [--only I,J] [--out DIR]`: chooses how peers
 * measure an update before voting, on the DEV split only (the global model is scored on
 * each task's dev split; the test split is never read). Same setting as Table 1: 5 agents,
 * quorum 4 of 5, Dirichlet(α = 1), Table 1's rounds and momentum per task, clean and with agent 5 sign-flipping ×5.
 * Writes docs/results/vote-rule-selection.{md,json}.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runBaseline } from '../src/federation/baselines.ts'
import { memberName, parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { TABLE1_BASE, TABLE1_SCHEDULE, TABLE1_SETTINGS } from './table1-setting.ts'

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '11' }, tasks: { type: 'string', default: 'classify,ner' }, only: { type: 'string' }, out: { type: 'string', default: 'docs/results' } } })
const seeds = values.seeds.split(',').map(Number)
const tasks = values.tasks.split(',')
// classify's peers judged by accuracy until the log-likelihood rows were measured; its judge is now set per candidate.
const candidates = [
  { name: 'full Δ, tolerance 0.01 (before)', voteScale: 'full', tolerance: 0.01, judge: 'accuracy' },
  { name: 'full Δ, tolerance 0.05', voteScale: 'full', tolerance: 0.05, judge: 'accuracy' },
  { name: 'share Δ/N, tolerance 0.01', voteScale: 'share', tolerance: 0.01, judge: 'accuracy' },
  { name: 'share Δ/N, tolerance 0', voteScale: 'share', tolerance: 0, judge: 'accuracy' },
  // "4 of 5" read as four members endorsing, the proposer's own proposal counting as its endorsement: 3 of 4 peers
  { name: 'full Δ, tolerance 0.01, proposer endorses (3 of 4 peers)', voteScale: 'full', tolerance: 0.01, quorum: 3, judge: 'accuracy' },
  { name: 'share Δ/N, tolerance 0.01, proposer endorses (3 of 4 peers)', voteScale: 'share', tolerance: 0.01, quorum: 3, judge: 'accuracy' },
  // classify only: peers judge by their validation labels' log-likelihood (nats per example)
  { name: 'share Δ/N, log-likelihood, tolerance 0.01', voteScale: 'share', tolerance: 0.01, judge: 'logLikelihood' },
  { name: 'share Δ/N, log-likelihood, tolerance 0', voteScale: 'share', tolerance: 0, judge: 'logLikelihood' },
  { name: 'full Δ, log-likelihood, tolerance 0.01', voteScale: 'full', tolerance: 0.01, judge: 'logLikelihood' },
  { name: 'share Δ/N, log-likelihood, tolerance 0.03', voteScale: 'share', tolerance: 0.03, judge: 'logLikelihood' },
  { name: 'share Δ/N, log-likelihood, tolerance 0.1', voteScale: 'share', tolerance: 0.1, judge: 'logLikelihood' },
  // classify only: on top of 0.1 nats, a share of what the federation has taught the peer since the initial model
  { name: 'share Δ/N, log-likelihood, tolerance 0.1 + 0.05 of the gain', voteScale: 'share', tolerance: 0.1, relativeTolerance: 0.05, judge: 'logLikelihood' },
  { name: 'share Δ/N, log-likelihood, tolerance 0.1 + 0.1 of the gain', voteScale: 'share', tolerance: 0.1, relativeTolerance: 0.1, judge: 'logLikelihood' },
  { name: 'share Δ/N, log-likelihood, tolerance 0.1 + 0.2 of the gain', voteScale: 'share', tolerance: 0.1, relativeTolerance: 0.2, judge: 'logLikelihood' }
].filter((_, i) => values.only === undefined || values.only.split(',').map(Number).includes(i))
const settings = TABLE1_SETTINGS

/** rejectedHonest / acceptedHostile: proposals of honest agents the vote rejected, of the hostile agent it merged. */
interface Row { task: string, setting: string, method: string, seed: number, dev: number, rejectionRate: number | null, rejectedHonest?: number, acceptedHostile?: number }
const rows: Row[] = []
for (const task of tasks) {
  for (const setting of settings) {
    for (const seed of seeds) {
      const base = { ...TABLE1_BASE, ...TABLE1_SCHEDULE[task as keyof typeof TABLE1_SCHEDULE], seed, task: { kind: task }, attacks: setting.attacks, evalSplit: 'dev' } as unknown as RunConfigInput
      const fedavg = await runBaseline('fedavg', parseRunConfig(base))
      rows.push({ task, setting: setting.name, method: 'fedavg', seed, dev: fedavg.rounds.at(-1)?.metric.value ?? Number.NaN, rejectionRate: null })
      for (const c of candidates) {
        const out = await mkdtemp(join(tmpdir(), 'conclave-vote-rules-'))
        const judged = task === 'classify' ? { task: { kind: task, judge: c.judge } } : {}
        const report = await runFederation(parseRunConfig({ ...base, ...judged, voteScale: c.voteScale, tolerance: c.tolerance, relativeTolerance: c.relativeTolerance ?? 0, quorum: 'quorum' in c ? c.quorum : 4 } as RunConfigInput), { out, force: true })
        await rm(out, { recursive: true, force: true })
        const hostile = new Set(setting.attacks.map(a => memberName(a.agent - 1)))
        const honest = report.agents.filter(a => !hostile.has(a.name))
        rows.push({
          task, setting: setting.name, method: c.name, seed, dev: report.rounds.at(-1)?.metric.value ?? Number.NaN, rejectionRate: report.rejectionRate,
          rejectedHonest: honest.reduce((n, a) => n + a.rejected, 0),
          acceptedHostile: report.agents.filter(a => hostile.has(a.name)).reduce((n, a) => n + a.accepted, 0)
        })
      }
      for (const r of rows.filter(r => r.task === task && r.setting === setting.name && r.seed === seed)) {
        process.stderr.write(`${task} · ${setting.name} · seed ${seed} · ${r.method}: dev ${r.dev.toFixed(4)}${r.rejectionRate === null ? '' : ` · rejected ${(100 * r.rejectionRate).toFixed(0)}% (honest ${r.rejectedHonest ?? '?'}; hostile merged ${r.acceptedHostile ?? '?'})`}\n`)
      }
    }
  }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const lines = ['| task | setting | method | dev metric (mean over seeds, %) | rejected | honest rejected | hostile merged |', '|---|---|---|---:|---:|---:|---:|']
for (const task of tasks) {
  for (const setting of settings) {
    for (const method of ['fedavg', ...candidates.map(c => c.name)]) {
      const rs = rows.filter(r => r.task === task && r.setting === setting.name && r.method === method)
      const rej = rs.map(r => r.rejectionRate).filter(x => x !== null)
      const total = (key: 'rejectedHonest' | 'acceptedHostile'): string => rej.length === 0 ? '—' : String(rs.reduce((n, r) => n + (r[key] ?? 0), 0))
      lines.push(`| ${task} | ${setting.name} | ${method} | ${(100 * mean(rs.map(r => r.dev))).toFixed(2)} | ${rej.length === 0 ? '—' : `${(100 * mean(rej)).toFixed(1)}%`} | ${total('rejectedHonest')} | ${total('acceptedHostile')} |`)
    }
  }
}
const table = lines.join('\n')
process.stdout.write(`\n${table}\n`)
await mkdir(values.out, { recursive: true })
const command = `node bench/vote-rules.ts --seeds ${values.seeds} --tasks ${values.tasks}`
await writeFile(join(values.out, 'vote-rule-selection.json'), JSON.stringify({ command, seeds, split: 'dev', rows }, null, 2) + '\n')
await writeFile(join(values.out, 'vote-rule-selection.md'), `# Choosing the vote rule on the dev split\n\nMade by \`${command}\` (dev split only; the test split is not read).\n\n${table}\n`)
