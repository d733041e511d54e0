/**
 * `node bench/phase-profile.ts [--task classify] [--agents 5] [--rounds 10] [--seed 11] [--out docs/results]`:
 * what runs while the innermost phase timer (`conclave run`'s default) charges a protocol phase.
 * One `conclave run` in this process, as bench:share makes it (policy agents, each proposal
 * judged by the other N−1 and merged on a majority of them), under V8's sampling CPU profiler;
 * every span the members' shared timer opens and closes is noted with its time, so each sample
 * goes to the phase the timer charged that instant to, and is sorted by what ran in it: protocol
 * code, the agent layer (LangGraph, agent memory, tools, models: every member's, not the
 * phase's), training, garbage collection, or nothing (the process waiting, on the disk say).
 * Members share one thread, so a phase held open across an await is charged for whatever runs
 * meanwhile. Writes phase-profile{-TASK}.{json,md} and a plot; prints figures, asserts nothing.
 * The profiler slows the run: the shares of each phase's time matter here, not its seconds.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { main } from '../src/cli/main.ts'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { PhaseTimer, type Phase } from '../src/federation/phases.ts'
import type { RunReport } from '../src/federation/report.ts'
import { loadAverage, percent, PROTOCOL, protocolSeconds } from './conclave-child.ts'

const { values } = parseArgs({ options: { task: { type: 'string', default: 'classify' }, agents: { type: 'string', default: '5' }, rounds: { type: 'string', default: '10' }, seed: { type: 'string', default: '11' }, out: { type: 'string', default: 'docs/results' } } })
const agents = Number(values.agents)
const name = values.task === 'classify' ? 'phase-profile' : `phase-profile-${values.task}`

/** What ran in a sample, by its stack: the first kind whose test a frame passes, from the leaf up. */
const KINDS = [
  { kind: 'training', test: (f: Frame) => /^(trainSoftmax|softmaxStep|trainUpdate)$/.test(f.functionName) },
  { kind: 'agent layer', test: (f: Frame) => /node_modules\/(@langchain|langsmith)\/|\/(graphs|agents|tools)\/|\/src\/llm\//.test(f.url) },
  { kind: 'garbage collection', test: (f: Frame) => f.functionName === '(garbage collector)' },
  { kind: 'waiting', test: (f: Frame) => f.functionName === '(idle)' }
] as const
const OTHER = 'protocol code'
type Kind = typeof KINDS[number]['kind'] | typeof OTHER
const KIND_NAMES: Kind[] = [OTHER, ...KINDS.map(k => k.kind)]

interface Frame { functionName: string, url: string }
interface ProfileNode { id: number, callFrame: Frame, children?: number[] }
interface Profile { nodes: ProfileNode[], startTime: number, samples: number[], timeDeltas: number[] }

// The innermost span each time a span opens or closes, on the profiler's clock (µs, monotonic).
const changes: Array<{ at: number, phase: Phase | undefined }> = []
const now = (): number => Number(process.hrtime.bigint() / 1000n)
const time = PhaseTimer.prototype.time
PhaseTimer.prototype.time = async function <T>(this: PhaseTimer, phase: Phase, work: () => Promise<T> | T): Promise<T> {
  // Noted before `time` runs: a span opened is the innermost at once, and its work may run a
  // long way before its first await (a training, for one). Once it has closed, the timer says which is.
  changes.push({ at: now(), phase })
  try {
    return await time.call(this, phase, work) as T
  } finally {
    changes.push({ at: now(), phase: this.innermost })
  }
}

const dir = await mkdtemp(join(tmpdir(), 'conclave-phase-profile-'))
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.start')
let report: RunReport
try {
  const code = await main(['run', '--agents', String(agents), '--rounds', values.rounds, '--committee', String(agents - 1), '--quorum', 'majority', '--seed', values.seed, '--task', values.task, '--out', dir, '--force'])
  if (code !== 0) throw new Error(`conclave run exited ${code}`)
  report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as RunReport
} finally {
  PhaseTimer.prototype.time = time
}
const { profile } = await session.post('Profiler.stop') as unknown as { profile: Profile }
session.disconnect()
await rm(dir, { recursive: true, force: true })

const parent = new Map<number, ProfileNode>()
const byId = new Map(profile.nodes.map(n => [n.id, n]))
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n)
const kindOf = new Map<number, Kind>()
function classify (id: number): Kind {
  const known = kindOf.get(id)
  if (known !== undefined) return known
  const frames: Frame[] = []
  for (let n = byId.get(id); n !== undefined; n = parent.get(n.id)) frames.push(n.callFrame)
  const kind = KINDS.find(k => frames.some(f => k.test(f)))?.kind ?? OTHER
  kindOf.set(id, kind)
  return kind
}

// A sample's time is the gap to the next sample; the phase is the innermost span open at the sample.
const charged = new Map<string, Map<Kind, number>>()
let at = profile.startTime
let next = 0
let phase: Phase | undefined
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  while (next < changes.length && (changes[next]?.at ?? Infinity) <= at) phase = changes[next++]?.phase
  const key = phase ?? '(no phase)'
  const kinds = charged.get(key) ?? new Map<Kind, number>()
  charged.set(key, kinds)
  const kind = classify(profile.samples[i] as number)
  kinds.set(kind, (kinds.get(kind) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1e6)
}

const total = (p: string): number => [...(charged.get(p)?.values() ?? [])].reduce((a, b) => a + b, 0)
const rows = PROTOCOL.map(p => ({ phase: p, seconds: total(p), kinds: Object.fromEntries(KIND_NAMES.map(k => [k, charged.get(p)?.get(k) ?? 0])) as Record<Kind, number> }))
const protocol = rows.reduce((s, r) => s + r.seconds, 0)
const byKind = Object.fromEntries(KIND_NAMES.map(k => [k, rows.reduce((s, r) => s + r.kinds[k], 0)])) as Record<Kind, number>
const trained = report.rounds.filter(r => r.round >= 1)
const wall = trained.reduce((s, r) => s + r.wallSeconds, 0)
const share = trained.reduce((s, r) => s + protocolSeconds(r.phases), 0) / wall
const command = `node bench/phase-profile.ts --task ${values.task} --agents ${agents} --rounds ${values.rounds} --seed ${values.seed}`
const load = await loadAverage()

await mkdir(values.out, { recursive: true })
await writeFile(join(values.out, `${name}.json`), JSON.stringify({ command, node: process.version, loadAverageAtEnd: load, modelHash: report.modelHash, shareUnderProfiler: share, protocolSeconds: protocol, byKind, rows }, null, 2) + '\n')
const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: `What ran while each protocol phase was charged (innermost timer; ${values.task}, N = ${agents}, seed ${values.seed})`,
  width: 420,
  height: 240,
  data: { values: rows.flatMap(r => KIND_NAMES.map(k => ({ phase: r.phase, kind: k, seconds: r.kinds[k] }))) },
  mark: 'bar',
  encoding: {
    x: { field: 'phase', type: 'nominal', sort: [...PROTOCOL] },
    y: { field: 'seconds', type: 'quantitative', aggregate: 'sum', title: 'CPU profile seconds, all rounds' },
    color: { field: 'kind', type: 'nominal', sort: KIND_NAMES, title: 'what ran' }
  }
}
await writeFile(join(values.out, `${name}.svg`), await vegaLiteSvg(spec))
const table = rows.map(r => `| ${r.phase} | ${r.seconds.toFixed(2)} | ${KIND_NAMES.map(k => `${r.kinds[k].toFixed(2)} (${percent(r.kinds[k] / Math.max(r.seconds, 1e-9))})`).join(' | ')} |`).join('\n')
const sum = `| all protocol phases | ${protocol.toFixed(2)} | ${KIND_NAMES.map(k => `${byKind[k].toFixed(2)} (${percent(byKind[k] / protocol)})`).join(' | ')} |`
const md = `# What the innermost phase timer charges to the protocol (${values.task}, N = ${agents})

Made by \`${command}\` (Node ${process.version}; load average ${load} at the end, on a shared 2-core machine). One \`conclave run\` in the bench's process (policy agents, each proposal judged by the other ${agents - 1} and merged on a majority of them, ${values.rounds} rounds, seed ${values.seed}; model ${report.modelHash}) under V8's sampling CPU profiler, with every span of the members' shared phase timer noted as it opened and closed. Each sample is charged to the phase the innermost timer charged that instant to, and sorted by its stack: training (the softmax's training loop), the agent layer (LangGraph, LangChain, agent memory, tools and models: any member's), garbage collection, waiting (no JavaScript ran: the disk, say), and the rest, protocol code. Seconds are the profile's, over all rounds and the charter; the profiler slows the run (protocol share of the round under it: ${percent(share)}), so read the shares of each row.

| phase | seconds | ${KIND_NAMES.join(' | ')} |
|---|---:|${KIND_NAMES.map(() => '---:').join('|')}|
${table}
${sum}

![what ran while each protocol phase was charged](${name}.svg)
`
await writeFile(join(values.out, `${name}.md`), md)
process.stdout.write(md)
