/**
 * `npm run bench:share -- [--task classify] [--agents 5] [--rounds 10] [--repeats 3] [--seed 11] [--timings innermost,precise] [--out docs/results]`:
 * how much of a round the protocol takes (publish, anchor, announce, fetch + verify, evaluate,
 * vote, merge), run after run. The same federation as bench:scale's (committee of N−1, a
 * majority of it, policy agents), run `--repeats` times per phase timer in fresh processes with
 * one seed, so what varies is the machine, not the model (each run's model hash is printed).
 * Per run: the share over all rounds (mean protocol seconds over mean wall seconds, as
 * bench:scale reports it), in round 1 (the code's first pass: V8 compiles the hot loops as
 * they run) and in rounds 2..R. Writes protocol-share{-TASK}.{json,md} and a plot of each
 * round's share; prints figures, asserts nothing.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { PhaseAttribution } from '../src/federation/phases.ts'
import { loadAverage, percent, PROTOCOL, protocolSeconds, runConclave } from './conclave-child.ts'

const { values } = parseArgs({ options: { task: { type: 'string', default: 'classify' }, agents: { type: 'string', default: '5' }, rounds: { type: 'string', default: '10' }, repeats: { type: 'string', default: '3' }, seed: { type: 'string', default: '11' }, timings: { type: 'string', default: 'innermost,precise' }, out: { type: 'string', default: 'docs/results' } } })
const agents = Number(values.agents)
const rounds = Number(values.rounds)
const repeats = Number(values.repeats)
const timings = values.timings.split(',').map(t => PhaseAttribution.parse(t))
if (!(rounds >= 2)) throw new Error('--rounds takes 2 or more: round 1 is reported apart from the rounds after it')
const later = rounds === 2 ? 'round 2' : `rounds 2–${rounds}`
const name = values.task === 'classify' ? 'protocol-share' : `protocol-share-${values.task}`

interface Run { timing: PhaseAttribution, repeat: number, modelHash: string, cpuSeconds: number, all: number, first: number, later: number, perRound: number[], phases: Record<string, number>, roundSeconds: number }
const runs: Run[] = []
/** Mean protocol seconds over mean wall seconds of `rs`. */
const share = (rs: ReadonlyArray<{ phases: Parameters<typeof protocolSeconds>[0], wallSeconds: number }>): number => rs.reduce((s, r) => s + protocolSeconds(r.phases), 0) / rs.reduce((s, r) => s + r.wallSeconds, 0)
for (const timing of timings) {
  for (let repeat = 1; repeat <= repeats; repeat++) {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-share-'))
    try {
      const { report, cpuSeconds } = await runConclave(['--agents', String(agents), '--rounds', String(rounds), '--committee', String(agents - 1), '--quorum', 'majority', '--seed', values.seed, '--task', values.task, '--phase-timing', timing], dir)
      const trained = report.rounds.filter(r => r.round >= 1)
      const phases = Object.fromEntries(PROTOCOL.map(p => [p, trained.reduce((s, r) => s + r.phases[p], 0) / trained.length]))
      const run: Run = { timing, repeat, modelHash: report.modelHash, cpuSeconds, all: share(trained), first: share(trained.slice(0, 1)), later: share(trained.slice(1)), perRound: trained.map(r => share([r])), phases, roundSeconds: trained.reduce((s, r) => s + r.wallSeconds, 0) / trained.length }
      runs.push(run)
      process.stderr.write(`${timing} #${repeat}: protocol ${percent(run.all)} of the round (round 1 ${percent(run.first)}, ${later} ${percent(run.later)}), ${run.roundSeconds.toFixed(2)} s per round, model ${report.modelHash.slice(0, 12)}\n`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
}

const spread = (xs: number[]): string => `${percent(xs.reduce((a, b) => a + b, 0) / xs.length)} (${percent(Math.min(...xs))}–${percent(Math.max(...xs))})`

const command = `npm run bench:share -- --task ${values.task} --agents ${agents} --rounds ${rounds} --repeats ${repeats} --seed ${values.seed} --timings ${timings.join(',')}`
const load = await loadAverage()
await mkdir(values.out, { recursive: true })
await writeFile(join(values.out, `${name}.json`), JSON.stringify({ command, node: process.version, loadAverageAtEnd: load, runs }, null, 2) + '\n')
const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: `Protocol share of each round (${values.task}, N = ${agents}, seed ${values.seed}, ${repeats} runs per timer)`,
  width: 420,
  height: 240,
  data: { values: runs.flatMap(r => r.perRound.map((s, i) => ({ round: i + 1, share: s, run: `${r.timing} #${r.repeat}`, timing: r.timing }))) },
  layer: [
    { mark: { type: 'line', point: true, opacity: 0.7 }, encoding: { x: { field: 'round', type: 'quantitative', axis: { tickMinStep: 1 } }, y: { field: 'share', type: 'quantitative', axis: { format: '%' }, title: 'protocol share of the round' }, color: { field: 'timing', type: 'nominal', title: 'phase timer' }, detail: { field: 'run', type: 'nominal' } } },
    { data: { values: [{ bar: 0.1 }] }, mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { field: 'bar', type: 'quantitative' } } }
  ]
}
await writeFile(join(values.out, `${name}.svg`), await vegaLiteSvg(spec))
const byTiming = timings.map(t => runs.filter(r => r.timing === t))
const summary = byTiming.map(rs => `| ${rs[0]?.timing} | ${rs.length} | ${spread(rs.map(r => r.all))} | ${spread(rs.map(r => r.first))} | ${spread(rs.map(r => r.later))} | ${(rs.reduce((s, r) => s + r.roundSeconds, 0) / rs.length).toFixed(2)} | ${PROTOCOL.map(p => (rs.reduce((s, r) => s + (r.phases[p] ?? 0), 0) / rs.length).toFixed(3)).join(' | ')} |`).join('\n')
const hashes = [...new Set(runs.map(r => r.modelHash))]
const md = `# Protocol share of the round (${values.task}, N = ${agents})\n\nMade by \`${command}\` (Node ${process.version}; load average ${load} at the end, on a shared 2-core machine). Each run is a fresh \`conclave run\` process: ${agents} members, policy agents, each proposal judged by the other ${agents - 1} and merged on a majority of them, ${rounds} rounds, seed ${values.seed}; ${hashes.length === 1 ? `every run ended with model ${hashes[0]}` : `**the runs ended with ${hashes.length} different models: ${hashes.join(', ')}**`}. A share is the protocol's seconds (${PROTOCOL.join(', ')}) over the round's wall seconds, means over the rounds named; mean over the runs (lowest–highest). The phase timers: innermost charges each instant to the phase opened last (one member's training, resumed while another's anchor is open, counts as anchoring); precise charges the time JavaScript runs to the phase it runs for and only the waits when none runs to the phase opened last (its hooks slow a run by about a fifth).\n\n| phase timer | runs | all rounds | round 1 | ${later} | wall s / round | ${PROTOCOL.join(' s | ')} s |\n|---|---:|---:|---:|---:|---:|${PROTOCOL.map(() => '---:').join('|')}|\n${summary}\n\n![protocol share of each round](${name}.svg)\n`
await writeFile(join(values.out, `${name}.md`), md)
process.stdout.write(md)
