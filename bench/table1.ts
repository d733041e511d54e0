/**
 * `npm run bench:table1 [-- --quick]`: centralised vs FedAvg vs Conclave, clean and with
 * one hostile agent of five (sign flip ×5), quorum 4 of 5, Dirichlet(α = 1) non-IID
 * shares, over seeds. Prints a markdown table (mean ± std over seeds), writes
 * docs/results/table1.json (or table1-quick.json), a learning-curve SVG per task and the table as a
 * radar (the paper's Figure 3, table1-radar.svg).
 *
 * Tasks: classify (OHSUMED-23), ner (BC5CDR) and qa (MedQuAD by distillation from the
 * dataset teacher; BLEU-4, plus the embedding similarity of the final model's answers to
 * the references on a fixed sample of test questions, all-MiniLM-L6-v2 from
 * `npm run models:minilm`), and BLEU-4 on "the other agents' slices": training questions of
 * agents 2–5 with the teacher's answers, which the issue's claim is about (the federated
 * student answers every agent's questions about as well as a central one, and better than
 * agent 1 alone, the `local` row). `--tasks qa` runs only those tasks and replaces their rows in
 * the existing table. Results are written after every row, so a long run keeps what it has.
 * Each row records the command that made it, and the markdown says which rows came from
 * which command. `--methods conclave-int8,conclave-topk,conclave-committee` adds Conclave under a charter's
 * compression or committee (table1-setting.ts), with the bytes each compressed update took; `--hostile 0` runs only
 * the clean rows. `--render` rewrites the markdown and plots from the JSON, running nothing.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { fixedSubset } from '../src/data/partition.ts'
import { loadQa } from '../src/data/qa.ts'
import { runBaseline } from '../src/federation/baselines.ts'
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { tokenize13a } from '../src/metrics/bleu.ts'
import { embeddingSimilarity, SentenceEncoder } from '../src/metrics/embedding.ts'
import type { Task } from '../src/ml/task.ts'
import type { QaExample } from '../src/ml/tasks/qa.ts'
import type { Weights } from '../src/ml/weights.ts'
import { radarAxes, radarSvg } from './table1-radar.ts'
import { TABLE1_BASE, TABLE1_SCHEDULE, TABLE1_SETTINGS, TABLE1_VARIANTS } from './table1-setting.ts'
import { meanUpdateBytes } from './update-bytes.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string', default: 'docs/results' }, tasks: { type: 'string', default: 'classify,ner,qa' }, methods: { type: 'string', default: 'centralized,fedavg,conclave,local' }, seeds: { type: 'string' }, hostile: { type: 'string', default: '0,1' }, render: { type: 'boolean', default: false } } })
const quick = values.quick
// QA's full rows cost about 7 minutes a run on 2 cores, so they may be run on fewer seeds (--seeds 1).
const seeds = values.seeds?.split(',').map(Number) ?? (quick ? [1] : [1, 2, 3])
if (seeds.some(s => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds takes whole numbers separated by commas, not "${values.seeds}"`)
const KINDS = Object.keys(TABLE1_SCHEDULE) as Array<keyof typeof TABLE1_SCHEDULE>
/** The task's rounds (2 in a quick run) and momentum. */
const schedule = (kind: keyof typeof TABLE1_SCHEDULE): { rounds: number, momentum: number } => ({ ...TABLE1_SCHEDULE[kind], ...(quick ? { rounds: 2 } : {}) })
const wanted = new Set(values.tasks.split(','))
// Rerun only some methods of those tasks (--methods conclave); the other rows are kept.
const methods = new Set(values.methods.split(','))
const tasks = (quick
  ? [{ kind: 'classify', trainLimit: 1200, testLimit: 800 } as const, { kind: 'ner', trainLimit: 1000, testLimit: 500 } as const, { kind: 'qa', trainLimit: 600, testLimit: 100 } as const]
  : [{ kind: 'classify' } as const, { kind: 'ner' } as const, { kind: 'qa' } as const]).filter(t => wanted.has(t.kind))
// Only the clean rows (--hostile 0), or only the hostile ones (--hostile 1); the others are kept.
const hostileCounts = new Set(values.hostile.split(',').map(Number))
const settings = TABLE1_SETTINGS.filter(s => hostileCounts.has(s.hostile))
/** Conclave under a charter's compression or committee (run only when --methods names them). */
const VARIANTS = Object.keys(TABLE1_VARIANTS) as Array<keyof typeof TABLE1_VARIANTS>
const isVariant = (method: string): method is keyof typeof TABLE1_VARIANTS => method in TABLE1_VARIANTS
/** Test questions whose answers are embedded (the same fixed sample for every run). */
const EMBEDDED_QUESTIONS = quick ? 50 : 200

interface Extra { mean: number, std: number, values: number[], questions: number }
/** `command`, `madeAt`: what made the row, and when (rows from before they were recorded have neither). */
interface Entry { task: string, setting: string, hostile: number, metric: string, mean: number, std: number, seeds: number[], values: number[], embedding?: Extra, slices?: Extra, rejectionRate: number | null, wallSeconds: number, curve?: number[][], command?: string, madeAt?: string, /** Mean bytes of a proposal's update as stored (compression rows). */ bytesPerUpdate?: number }
const name = quick ? 'table1-quick' : 'table1'
const flags = [...(quick ? ['--quick'] : []), ...(values.seeds === undefined ? [] : ['--seeds', values.seeds]), ...(values.tasks === 'classify,ner,qa' ? [] : ['--tasks', values.tasks]), ...(values.methods === 'centralized,fedavg,conclave,local' ? [] : ['--methods', values.methods]), ...(values.hostile === '0,1' ? [] : ['--hostile', values.hostile])]
const command = `npm run bench:table1${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`
// Rows of tasks not run now are kept from the last full table (all of them when rendering).
const kept: Entry[] = quick && !values.render ? [] : await readFile(join(values.out, `${name}.json`), 'utf8').then(t => (JSON.parse(t) as { entries: Entry[] }).entries.filter(e => values.render || !wanted.has(e.task) || !methods.has(e.setting) || !hostileCounts.has(e.hostile)), () => [])
if (values.render && kept.length === 0) throw new Error(`--render needs ${join(values.out, `${name}.json`)}`)
const entries: Entry[] = []
const encoder = !values.render && tasks.some(t => t.kind === 'qa') ? await SentenceEncoder.load((await promisify(execFile)('scripts/models/minilm.sh')).stdout.trim().split('\n').at(-1) as string) : undefined

/** Questions of the other agents' slices scored per run (a fixed sample). */
const SLICE_QUESTIONS = quick ? 100 : 400

/**
 * The QA model's extra scores: embedding similarity of its answers to the test references
 * (their first `answerTokens` tokens, as BLEU scores them), and BLEU-4 on the training
 * questions of agents 2–5 against the teacher's answers.
 */
async function qaScores (weights: Weights, task: Task, config: RunConfig): Promise<{ embedding: number, slices: number }> {
  const qa = task as Task<QaExample>
  if (encoder === undefined || qa.answer === undefined || qa.teaching === undefined || config.task.kind !== 'qa') throw new Error('QA scores need the sentence encoder and the qa task')
  const sample = fixedSubset((await loadQa(config.task.data)).test, EMBEDDED_QUESTIONS)
  const said = await qa.answer(weights, sample.map(p => p.question))
  const answerTokens = config.task.answerTokens
  const embedding = (await embeddingSimilarity(encoder, said, sample.map(p => tokenize13a(p.answer).slice(0, answerTokens).join(' ')))).mean
  const teaching = qa.teaching
  const shards = qa.shards(config.agents, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha })
  const others = fixedSubset(shards.slice(1).flatMap(s => s.train), SLICE_QUESTIONS).map(e => teaching.learn(e, e.answer))
  return { embedding, slices: (await qa.evaluate(weights, others)).metric }
}
const stats = (xs: number[]): { mean: number, std: number } => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return { mean, std: Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1)) }
}

for (const task of values.render ? [] : tasks) {
for (const setting of settings) {
  for (const method of ['centralized', 'fedavg', 'conclave', ...VARIANTS, ...(task.kind === 'qa' ? ['local'] as const : [])] as const) {
    if (!methods.has(method)) continue
    if ((method === 'centralized' || method === 'local') && setting.hostile > 0) continue // pooled data, or agent 1 alone: no hostile agent
    const finals: number[] = []
    const curves: number[][] = []
    const rejections: number[] = []
    const similarities: number[] = []
    const bytes: number[] = []
    const slices: number[] = []
    // QA only: the final model's answers, embedded and compared with the references.
    const onModel = task.kind === 'qa'
      ? async (weights: Weights, t: Task): Promise<void> => {
        const scores = await qaScores(weights, t, config)
        similarities.push(scores.embedding)
        slices.push(scores.slices)
      }
      : undefined
    let config: RunConfig
    let wall = 0
    for (const seed of seeds) {
      const variant = isVariant(method) ? TABLE1_VARIANTS[method] : {}
      config = parseRunConfig({ ...TABLE1_BASE, ...schedule(task.kind), seed, task, attacks: setting.attacks, ...variant } as unknown as RunConfigInput)
      const started = performance.now()
      let curve: number[]
      if (method === 'conclave' || isVariant(method)) {
        const out = await mkdtemp(join(tmpdir(), 'conclave-table1-'))
        const report = await runFederation(config, { out, force: true, onModel })
        curve = report.rounds.map(r => r.metric.value)
        rejections.push(report.rejectionRate)
        if (isVariant(method) && 'compression' in TABLE1_VARIANTS[method]) bytes.push(await meanUpdateBytes(out))
        await rm(out, { recursive: true, force: true })
      } else {
        curve = (await runBaseline(method, config, { onModel })).rounds.map(r => r.metric.value)
      }
      wall += (performance.now() - started) / 1000
      finals.push(curve.at(-1) as number)
      curves.push(curve)
      process.stderr.write(`${task.kind} · ${setting.name} · ${method} · seed ${seed}: ${metricOf(task.kind)} ${(curve.at(-1) as number).toFixed(4)}${similarities.length > 0 ? ` · embedding similarity ${(similarities.at(-1) as number).toFixed(4)} · BLEU-4 on agents 2–5's questions ${(slices.at(-1) as number).toFixed(4)}` : ''}\n`)
    }
    entries.push({
      task: task.kind, setting: method, hostile: setting.hostile, metric: metricOf(task.kind), ...stats(finals), seeds, values: finals,
      ...(similarities.length > 0 ? { embedding: { ...stats(similarities), values: similarities, questions: EMBEDDED_QUESTIONS }, slices: { ...stats(slices), values: slices, questions: SLICE_QUESTIONS } } : {}),
      rejectionRate: rejections.length > 0 ? stats(rejections).mean : null, wallSeconds: wall / seeds.length,
      ...(bytes.length > 0 ? { bytesPerUpdate: stats(bytes).mean } : {}),
      curve: curves[0]?.map((_, r) => curves.reduce((s, c) => s + (c[r] as number), 0) / curves.length).map(v => [v]) ?? [],
      command,
      madeAt: new Date().toISOString()
    })
    await write()
  }
}
}
encoder?.dispose()
if (values.render) await write()

/** Writes the table so far: JSON, markdown and one learning-curve plot per task run now. */
async function write (): Promise<void> {
  const order = (e: Entry): number => ['classify', 'ner', 'qa'].indexOf(e.task) * 100 + e.hostile * 10 + ['centralized', 'fedavg', 'conclave', ...VARIANTS, 'local'].indexOf(e.setting)
  const all = [...kept, ...entries].sort((a, b) => order(a) - order(b))
  const pct = (m: number, sd: number): string => `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`
  const lines = ['| task | hostile | method | metric | mean ± std (%) | qa: embedding similarity (%) | qa: BLEU-4 on agents 2–5\'s questions (%) | rejected | s / run | KiB / update |', '|---|---:|---|---|---:|---:|---:|---:|---:|---:|']
  const extra = (x: Extra | undefined): string => x === undefined ? '—' : pct(x.mean, x.std)
  for (const e of all) lines.push(`| ${e.task} | ${e.hostile} of 5 | ${e.setting} | ${e.metric} | ${pct(e.mean, e.std)} | ${extra(e.embedding)} | ${extra(e.slices)} | ${e.rejectionRate === null ? '—' : `${(100 * e.rejectionRate).toFixed(1)}%`} | ${e.wallSeconds.toFixed(0)} | ${e.bytesPerUpdate === undefined ? '—' : (e.bytesPerUpdate / 1024).toFixed(1)} |`)
  const table = lines.join('\n')
  const setting = `${provenance(all)}seeds ${seeds.join(', ')} · rounds (server momentum): ${KINDS.map(k => `${k} ${schedule(k).rounds} (${schedule(k).momentum})`).join(', ')} · 5 agents · quorum 4 of 5 · Dirichlet(α = 1) · hostile: agent 5 sign-flips its update ×5 · qa embedding similarity: all-MiniLM-L6-v2 cosine on a fixed sample of ${EMBEDDED_QUESTIONS} test questions; agents 2–5's questions: a fixed sample of ${SLICE_QUESTIONS} of their training questions, teacher's answers as references; local: agent 1 alone`
  process.stdout.write(`\n${table}\n\n${setting}\n`)
  await mkdir(values.out, { recursive: true })
  if (!values.render) await writeFile(join(values.out, `${name}.json`), JSON.stringify({ command, seeds, schedule: Object.fromEntries(KINDS.map(k => [k, schedule(k)])), generatedAt: new Date().toISOString(), entries: all }, null, 2) + '\n')
  const radar = radarAxes(all)
  await writeFile(join(values.out, `${name}-radar.svg`), await radarSvg(all, `Table 1 as a radar: FedAvg and Conclave (1 = the reference each axis names)`))
  const axes = radar.axes.map(a => `- **${a.axis}**: ${a.measures}`).join('\n')
  await writeFile(join(values.out, `${name}.md`), `# Table 1\n\n${setting}.\n\n${table}\n\n![Table 1 as a radar](${name}-radar.svg)\n\nEach axis of the radar (the paper's Figure 3), from the rows above:\n\n${axes}\n`)
  // Kept rows carry their curves in the JSON (rows from before curves were kept there have none).
  for (const task of values.render ? [...new Set(all.map(e => e.task))].map(kind => ({ kind })) : tasks) await writeFile(join(values.out, `${name}-${task.kind}-curves.svg`), curvesSvg(all.filter(e => e.task === task.kind && (e.curve?.length ?? 0) > 0)))
}

/** Which command made which rows, in the order the commands first appear. */
function provenance (all: Entry[]): string {
  const groups = new Map<string, Entry[]>()
  for (const e of all) groups.set(e.command ?? '', [...(groups.get(e.command ?? '') ?? []), e])
  const [only] = groups.keys()
  if (groups.size === 1 && only !== undefined && only !== '') return `Made by \`${only}\`; `
  const rows = (es: Entry[]): string => es.map(e => `${e.task} ${e.setting}${e.hostile > 0 ? ' (hostile)' : ''}`).join(', ')
  const parts = [...groups].map(([cmd, es]) => cmd === '' ? `${rows(es)} from runs made before rows recorded their command` : `${rows(es)} by \`${cmd}\`${es[0]?.madeAt === undefined ? '' : ` (${es[0].madeAt.slice(0, 10)})`}`)
  return `Rows made by separate runs of the bench (each row's seeds are in the JSON): ${parts.join('; ')}; `
}

function metricOf (kind: string): string {
  return kind === 'ner' ? 'entity F1' : kind === 'qa' ? 'BLEU-4' : 'accuracy'
}

function curvesSvg (entries: Entry[]): string {
  const all = entries.map(e => ({ ...e, curve: e.curve ?? [] }))
  const w = 560
  const h = 320
  const pad = 50
  const maxR = Math.max(...all.map(e => e.curve.length - 1), 1)
  const sx = (r: number): number => pad + (r / maxR) * (w - 2 * pad)
  // The y axis ends at the next tenth above the best value, so BLEU near 0.1 is not a flat line.
  const top = Math.min(1, Math.max(0.1, Math.ceil(10 * Math.max(...all.flatMap(e => e.curve.map(v => v[0] as number)))) / 10))
  const sy = (v: number): number => h - pad - (v / top) * (h - 2 * pad)
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd']
  const paths = all.map((e, i) => {
    const d = e.curve.map((v, r) => `${r === 0 ? 'M' : 'L'}${sx(r).toFixed(1)},${sy(v[0] as number).toFixed(1)}`).join(' ')
    const colour = colours[i % colours.length] as string
    return `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${e.hostile > 0 ? ' stroke-dasharray="5,3"' : ''}/><text x="${w - pad + 4}" y="${(20 + 14 * i).toFixed(0)}" fill="${colour}" font-size="10">${e.setting}${e.hostile > 0 ? ' (hostile)' : ''}</text>`
  }).join('\n')
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => f * top).map(v => `<text x="${pad - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${Number(v.toFixed(3))}</text>`).join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w + 90}" height="${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>
<text x="${w / 2}" y="16" text-anchor="middle" font-size="12">${({ ner: 'BC5CDR test entity F1', qa: 'MedQuAD test BLEU-4', classify: 'OHSUMED-23 test accuracy' } as Record<string, string>)[all[0]?.task ?? 'classify']} per round (mean over seeds ${seeds.join(', ')})</text>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="black"/>${ticks}
<text x="${w / 2}" y="${h - 12}" text-anchor="middle" font-size="11">round</text>
${paths}
</svg>
`
}
