/**
 * `npm run bench:memory -- [--rounds 50] [--agents 5] [--seed 42] [--autopilot] [--out docs/results]`: does a long
 * run hold its memory flat? `npm start`'s federation (classify, quorum 4 of 5, policy agents unless
 * --autopilot) run for many rounds in one process; after each round a full GC, then RSS, heap and array buffers are read. Prints the
 * least-squares slope per round over the rounds after the first five (warm-up: JIT, caches filling)
 * and writes memory.{json,md} and a plot. Prints figures; asserts nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { TopLevelSpec } from 'vega-lite'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { parseRunConfig } from '../src/federation/config.ts'
import { Simulation } from '../src/federation/simulation.ts'
import { agentDriver } from '../agents/index.ts'
import { initBackend } from '../src/ml/backend.ts'
import { slope } from './fit.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '50' }, agents: { type: 'string', default: '5' }, seed: { type: 'string', default: '42' }, autopilot: { type: 'boolean', default: false }, out: { type: 'string', default: 'docs/results' } } })
const rounds = Number(values.rounds)
const agents = Number(values.agents)
const seed = Number(values.seed)
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const MiB = 2 ** 20

interface Sample { round: number, rssMiB: number, heapMiB: number, arrayBuffersMiB: number, metric: number }
const samples: Sample[] = []
const measure = (round: number, metric: number): void => {
  gc()
  const m = process.memoryUsage()
  samples.push({ round, rssMiB: m.rss / MiB, heapMiB: m.heapUsed / MiB, arrayBuffersMiB: m.arrayBuffers / MiB, metric })
  process.stderr.write(`round ${round}/${rounds}: rss ${(m.rss / MiB).toFixed(0)} MiB, heap ${(m.heapUsed / MiB).toFixed(0)} MiB, array buffers ${(m.arrayBuffers / MiB).toFixed(0)} MiB, accuracy ${metric.toFixed(3)}\n`)
}

await initBackend({})
const dir = await mkdtemp(join(tmpdir(), 'conclave-memory-'))
try {
  const config = parseRunConfig({ agents, rounds, seed, quorum: 4 })
  const sim = await Simulation.create(config, { dir, driver: values.autopilot ? undefined : agentDriver() })
  measure(0, (await sim.charter()).metric.value)
  for (let r = 1; r <= rounds; r++) measure(r, (await sim.round(r)).metric.value)
  await sim.close()
} finally {
  await rm(dir, { recursive: true, force: true })
}

const settled = samples.filter(s => s.round > 5)
const fit = {
  rss: slope(settled.map(s => [s.round, s.rssMiB])),
  heap: slope(settled.map(s => [s.round, s.heapMiB])),
  arrayBuffers: slope(settled.map(s => [s.round, s.arrayBuffersMiB]))
}
const peak = Math.max(...samples.map(s => s.rssMiB))
const driver = values.autopilot ? 'the protocol autopilot' : 'policy agents'
const command = `npm run bench:memory -- --rounds ${rounds} --agents ${agents} --seed ${seed}${values.autopilot ? ' --autopilot' : ''}`
await writeFile(join(values.out, 'memory.json'), JSON.stringify({ command, node: process.version, rounds, agents, seed, driver, slopeMiBPerRound: fit, peakRssMiB: peak, samples }, null, 2) + '\n')
const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: `Memory after a full GC: ${agents} agents (${driver}) in one process, classify, seed ${seed}`,
  width: 480,
  height: 240,
  data: { values: samples.flatMap(s => [{ round: s.round, what: 'RSS', MiB: s.rssMiB }, { round: s.round, what: 'JS heap', MiB: s.heapMiB }, { round: s.round, what: 'array buffers', MiB: s.arrayBuffersMiB }]) },
  mark: { type: 'line', point: true },
  encoding: { x: { field: 'round', type: 'quantitative' }, y: { field: 'MiB', type: 'quantitative' }, color: { field: 'what', type: 'nominal', title: null } }
}
await writeFile(join(values.out, 'memory.svg'), await vegaLiteSvg(spec))
const md = `# Memory over a long run\n\nMade by \`${command}\` (Node ${process.version}): \`npm start\`'s federation (classify, ${agents} agents in one process driven by ${driver}, quorum 4 of 5) for ${rounds} rounds; after each round a full GC, then the process's memory.\n\n| | slope after round 5 (MiB per round) |\n|---|---:|\n| RSS | ${fit.rss.toFixed(2)} |\n| JS heap | ${fit.heap.toFixed(2)} |\n| array buffers | ${fit.arrayBuffers.toFixed(2)} |\n\nPeak RSS ${peak.toFixed(0)} MiB.\n\n![memory per round](memory.svg)\n`
await writeFile(join(values.out, 'memory.md'), md)
process.stdout.write(md)
