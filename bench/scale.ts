/**
 * `npm run bench:scale -- [--agents 5,10,20,50,100] [--rounds 2] [--committee 5] [--seed 11] [--task classify|ner|qa] [--autopilot] [--out docs/results]`:
 * how a round grows with the federation. For each N, a fresh `conclave run` process (the task,
 * quorum: a majority of each proposal's committee of min(k, N−1) peers, policy agents unless
 * --autopilot); from its report.json the mean round time over rounds 1..R, the phases, and the
 * peak RSS. Fits round time ∝ N^b by least squares on log–log, and b between neighbours.
 * Writes scale.{json,md} (scale-TASK.* for a task other than classify) and a plot; prints figures, asserts nothing.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { loadAverage, PROTOCOL, protocolSeconds, runConclave } from './conclave-child.ts'
import { slope } from './fit.ts'

const { values } = parseArgs({ options: { agents: { type: 'string', default: '5,10,20,50,100' }, rounds: { type: 'string', default: '2' }, committee: { type: 'string', default: '5' }, seed: { type: 'string', default: '11' }, task: { type: 'string', default: 'classify' }, autopilot: { type: 'boolean', default: false }, 'phase-timing': { type: 'string', default: 'innermost' }, out: { type: 'string', default: 'docs/results' } } })
const sizes = values.agents.split(',').map(Number)
const rounds = Number(values.rounds)
const k = Number(values.committee)
const seed = Number(values.seed)
const task = values.task
const name = task === 'classify' ? 'scale' : `scale-${task}`
const driver = values.autopilot ? 'the protocol autopilot' : 'policy agents'

interface Row { agents: number, committee: number, roundSeconds: number, trainSeconds: number, protocolSeconds: number, protocolShare: number, peakRssMiB: number, rssPerAgentMiB: number, cpuSeconds: number, metricName: string, metric: number, phases: Record<string, number>, audit: boolean, modelHash: string }
const rows: Row[] = []
for (const agents of sizes) {
  const committee = Math.min(k, agents - 1)
  const dir = await mkdtemp(join(tmpdir(), 'conclave-scale-'))
  process.stderr.write(`N = ${agents}, committee ${committee}: running ${rounds} rounds…\n`)
  try {
    const { report, cpuSeconds } = await runConclave(['--agents', String(agents), '--rounds', String(rounds), '--committee', String(committee), '--quorum', 'majority', '--seed', String(seed), '--task', task, ...(values.autopilot ? ['--autopilot'] : []), '--phase-timing', values['phase-timing']], dir)
    const trained = report.rounds.filter(r => r.round >= 1)
    const mean = (f: (r: typeof trained[number]) => number): number => trained.reduce((s, r) => s + f(r), 0) / trained.length
    const protocol = mean(r => protocolSeconds(r.phases))
    const roundSeconds = mean(r => r.wallSeconds)
    const peak = Math.max(...report.rounds.map(r => r.peakRssMiB ?? 0))
    rows.push({ agents, committee, roundSeconds, trainSeconds: mean(r => r.phases.train), protocolSeconds: protocol, protocolShare: protocol / roundSeconds, peakRssMiB: peak, rssPerAgentMiB: peak / agents, cpuSeconds, metricName: report.rounds.at(-1)?.metric.name ?? 'metric', metric: report.rounds.at(-1)?.metric.value ?? Number.NaN, phases: Object.fromEntries(Object.keys(trained[0]?.phases ?? {}).map(p => [p, mean(r => (r.phases as Record<string, number>)[p] ?? 0)])), audit: report.audit?.ok === true, modelHash: report.modelHash })
    process.stderr.write(`  ${roundSeconds.toFixed(1)} s per round, protocol ${(100 * protocol / roundSeconds).toFixed(0)}%, peak RSS ${peak.toFixed(0)} MiB (${(peak / agents).toFixed(1)} per agent), audit ${report.audit?.ok === true ? 'ok' : 'FAILED'}\n`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const logPoints = (f: (r: Row) => number): Array<[number, number]> => rows.map(r => [Math.log(r.agents), Math.log(f(r))])
const exponent = { wall: slope(logPoints(r => r.roundSeconds)), cpu: slope(logPoints(r => r.cpuSeconds / rounds)) }
const steps = rows.slice(1).map((r, i) => {
  const p = rows[i] as Row
  return { from: p.agents, to: r.agents, wall: Math.log(r.roundSeconds / p.roundSeconds) / Math.log(r.agents / p.agents), cpu: Math.log(r.cpuSeconds / p.cpuSeconds) / Math.log(r.agents / p.agents) }
})
const command = `npm run bench:scale -- --agents ${sizes.join(',')} --rounds ${rounds} --committee ${k} --seed ${seed}${task === 'classify' ? '' : ` --task ${task}`}${values.autopilot ? ' --autopilot' : ''}${values['phase-timing'] === 'innermost' ? '' : ` --phase-timing ${values['phase-timing']}`}`
await mkdir(values.out, { recursive: true })
const load = await loadAverage()
await writeFile(join(values.out, `${name}.json`), JSON.stringify({ command, node: process.version, rounds, committee: k, seed, driver, loadAverageAtEnd: load, exponent, steps, rows }, null, 2) + '\n')
const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: `Seconds per round against N (committee ${k}, ${driver}, ${task}, seed ${seed})`,
  width: 420,
  height: 260,
  data: { values: rows.flatMap(r => [{ agents: r.agents, what: 'wall s per round', seconds: r.roundSeconds }, { agents: r.agents, what: 'CPU s per round', seconds: r.cpuSeconds / rounds }, { agents: r.agents, what: 'protocol s per round', seconds: r.protocolSeconds }]) },
  mark: { type: 'line', point: true },
  encoding: { x: { field: 'agents', type: 'quantitative', scale: { type: 'log' } }, y: { field: 'seconds', type: 'quantitative', scale: { type: 'log' } }, color: { field: 'what', type: 'nominal', title: null } }
}
await writeFile(join(values.out, `${name}.svg`), await vegaLiteSvg(spec))
const table = rows.map(r => `| ${r.agents} | ${r.committee} | ${r.roundSeconds.toFixed(1)} | ${(r.cpuSeconds / rounds).toFixed(1)} | ${r.trainSeconds.toFixed(1)} | ${r.protocolSeconds.toFixed(1)} (${(100 * r.protocolShare).toFixed(0)}%) | ${r.peakRssMiB.toFixed(0)} | ${r.rssPerAgentMiB.toFixed(1)} | ${r.metric.toFixed(4)} | ${r.audit ? 'ok' : 'FAILED'} |`).join('\n')
const phaseTable = `| N | ${PROTOCOL.join(' | ')} |\n|---:|${PROTOCOL.map(() => '---:').join('|')}|\n${rows.map(r => `| ${r.agents} | ${PROTOCOL.map(p => (r.phases[p] ?? 0).toFixed(2)).join(' | ')} |`).join('\n')}`
const md = `# Scale: seconds per round from ${sizes[0]} to ${sizes.at(-1)} agents\n\nMade by \`${command}\` (Node ${process.version}; load average ${load} at the end, on a shared 2-core machine: wall seconds include waiting for the CPU, CPU seconds do not). Each N is a fresh \`conclave run\` process: ${task}, ${driver}, each proposal judged by a committee of min(${k}, N−1) peers and merged on a majority of it; figures are the mean over rounds 1–${rounds}.\n\n| N | committee | wall s / round | CPU s / round | train s | protocol s (share) | peak RSS MiB | per agent | ${rows[0]?.metricName ?? 'metric'} | audit |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n${table}\n\nThe protocol's phases, seconds per round (the run's shared phase timer, ${values['phase-timing'] === 'precise' ? 'precise: each instant charged to the member code that ran in it, waits to the phase opened last (a run under its hooks is about a fifth slower)' : 'innermost: each instant charged to the phase opened last'}):\n\n${phaseTable}${rows.length < 2 ? '' : `\n\nRound time ∝ N^b, least squares on log–log: b = ${exponent.wall.toFixed(2)} (wall), ${exponent.cpu.toFixed(2)} (CPU). Between neighbours: ${steps.map(s => `${s.from}→${s.to}: ${s.wall.toFixed(2)} wall, ${s.cpu.toFixed(2)} CPU`).join('; ')}.`}\n\n![seconds per round against N](${name}.svg)\n`
await writeFile(join(values.out, `${name}.md`), md)
process.stdout.write(md)
