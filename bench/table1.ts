/**
 * `npm run bench:table1 [-- --quick]`: centralised vs FedAvg vs Conclave, clean and with
 * one hostile agent of five (sign flip ×5), quorum 4 of 5, Dirichlet(α = 1) non-IID
 * shares, over seeds. Prints a markdown table (mean ± std over seeds), writes
 * docs/results/table1.json (or table1-quick.json) and a learning-curve SVG.
 *
 * Tasks so far: classify (OHSUMED-23) and ner (BC5CDR). QA joins when its student exists.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runBaseline } from '../src/federation/baselines.ts'
import { parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { TABLE1_BASE, TABLE1_ROUNDS, TABLE1_SETTINGS } from './table1-setting.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string', default: 'docs/results' } } })
const quick = values.quick
const seeds = quick ? [1] : [1, 2, 3]
const rounds = quick ? 2 : TABLE1_ROUNDS
const tasks = quick
  ? [{ kind: 'classify', trainLimit: 1200, testLimit: 800 }, { kind: 'ner', trainLimit: 1000, testLimit: 500 }]
  : [{ kind: 'classify' }, { kind: 'ner' }]
const settings = TABLE1_SETTINGS

interface Entry { task: string, setting: string, hostile: number, metric: string, mean: number, std: number, seeds: number[], values: number[], rejectionRate: number | null, wallSeconds: number, curve: number[][] }
const entries: Entry[] = []
const stats = (xs: number[]): { mean: number, std: number } => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return { mean, std: Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1)) }
}

for (const task of tasks) {
for (const setting of settings) {
  for (const method of ['centralized', 'fedavg', 'conclave'] as const) {
    if (method === 'centralized' && setting.hostile > 0) continue // pooled data has no hostile agent
    const finals: number[] = []
    const curves: number[][] = []
    const rejections: number[] = []
    let wall = 0
    for (const seed of seeds) {
      const config = parseRunConfig({ ...TABLE1_BASE, rounds, seed, task, attacks: setting.attacks } as unknown as RunConfigInput)
      const started = performance.now()
      let curve: number[]
      if (method === 'conclave') {
        const out = await mkdtemp(join(tmpdir(), 'conclave-table1-'))
        const report = await runFederation(config, { out, force: true })
        curve = report.rounds.map(r => r.metric.value)
        rejections.push(report.rejectionRate)
        await rm(out, { recursive: true, force: true })
      } else {
        curve = (await runBaseline(method, config)).rounds.map(r => r.metric.value)
      }
      wall += (performance.now() - started) / 1000
      finals.push(curve.at(-1) as number)
      curves.push(curve)
      process.stderr.write(`${task.kind} · ${setting.name} · ${method} · seed ${seed}: ${metricOf(task.kind)} ${(curve.at(-1) as number).toFixed(4)}\n`)
    }
    entries.push({
      task: task.kind, setting: method, hostile: setting.hostile, metric: metricOf(task.kind), ...stats(finals), seeds, values: finals,
      rejectionRate: rejections.length > 0 ? stats(rejections).mean : null, wallSeconds: wall / seeds.length,
      curve: curves[0]?.map((_, r) => curves.reduce((s, c) => s + (c[r] as number), 0) / curves.length).map(v => [v]) ?? []
    })
  }
}
}

const lines = ['| task | hostile | method | metric | mean ± std (%) | rejected | s / run |', '|---|---:|---|---|---:|---:|---:|']
for (const e of entries) lines.push(`| ${e.task} | ${e.hostile} of 5 | ${e.setting} | ${e.metric} | ${(100 * e.mean).toFixed(2)} ± ${(100 * e.std).toFixed(2)} | ${e.rejectionRate === null ? '—' : `${(100 * e.rejectionRate).toFixed(1)}%`} | ${e.wallSeconds.toFixed(0)} |`)
const table = lines.join('\n')
process.stdout.write(`\n${table}\n\nseeds ${seeds.join(', ')} · ${rounds} rounds · 5 agents · quorum 4 of 5 · Dirichlet(α = 1) · hostile: agent 5 sign-flips its update ×5\n`)

await mkdir(values.out, { recursive: true })
const name = quick ? 'table1-quick' : 'table1'
const command = `npm run bench:table1${quick ? ' -- --quick' : ''}`
await writeFile(join(values.out, `${name}.json`), JSON.stringify({ command, seeds, rounds, generatedAt: new Date().toISOString(), entries: entries.map(({ curve: _curve, ...e }) => e) }, null, 2) + '\n')
await writeFile(join(values.out, `${name}.md`), `# Table 1 (classification and NER so far)\n\nMade by \`${command}\`.\n\n${table}\n`)
for (const task of tasks) await writeFile(join(values.out, `${name}-${task.kind}-curves.svg`), curvesSvg(entries.filter(e => e.task === task.kind)))

function metricOf (kind: string): string {
  return kind === 'ner' ? 'entity F1' : 'accuracy'
}

function curvesSvg (all: Entry[]): string {
  const w = 560
  const h = 320
  const pad = 50
  const maxR = Math.max(...all.map(e => e.curve.length - 1), 1)
  const sx = (r: number): number => pad + (r / maxR) * (w - 2 * pad)
  const sy = (v: number): number => h - pad - v * (h - 2 * pad)
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd']
  const paths = all.map((e, i) => {
    const d = e.curve.map((v, r) => `${r === 0 ? 'M' : 'L'}${sx(r).toFixed(1)},${sy(v[0] as number).toFixed(1)}`).join(' ')
    const colour = colours[i % colours.length] as string
    return `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${e.hostile > 0 ? ' stroke-dasharray="5,3"' : ''}/><text x="${w - pad + 4}" y="${(20 + 14 * i).toFixed(0)}" fill="${colour}" font-size="10">${e.setting}${e.hostile > 0 ? ' (hostile)' : ''}</text>`
  }).join('\n')
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(v => `<text x="${pad - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${v}</text>`).join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w + 90}" height="${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>
<text x="${w / 2}" y="16" text-anchor="middle" font-size="12">${all[0]?.task === 'ner' ? 'BC5CDR test entity F1' : 'OHSUMED-23 test accuracy'} per round (mean over seeds ${seeds.join(', ')})</text>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="black"/>${ticks}
<text x="${w / 2}" y="${h - 12}" text-anchor="middle" font-size="11">round</text>
${paths}
</svg>
`
}
