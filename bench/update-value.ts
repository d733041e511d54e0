/**
 * `node bench/update-value.ts [--config examples/hardened/classify.yaml] [--seeds 11,12,13]
 *  [--settings clean,label-noise:1,label-noise:2,random-labels:1,random-labels:2] [--attack-args k=v,…] [--out docs/results] [--name update-value] [--render]`:
 * what each update teaches an honest voter, on the DEV split only (the test split is never read).
 * Runs the config's federation (its charter terms; the last h members hostile by the setting's
 * attack, with `--attack-args` as its own settings; `random-labels` is label-noise at rate 1) round by round in one process, and after each
 * round measures, for every honest voter and every peer's update of the round, on the voter's
 * validation examples: the gain of the global model with the update at its share, by the judge's
 * log-likelihood (what the improve test scores), by the task's own metric (how well the model
 * ranks the classes: accuracy or F1, no confidence in it) and by how much surer it leaves the
 * model (mean entropy, where the judge measures it), each over the same gain of the voter's own
 * update. Writes NAME.{json,md} and NAME.svg (NAME: `--name`, update-value by default; update-value-ner
 * for NER's); `--render` remakes the last two from the JSON.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { memberName, parseRunConfig, readConfigFile } from '../src/federation/config.ts'
import { fetchUpdate } from '../src/federation/content.ts'
import { Simulation } from '../src/federation/simulation.ts'
import { NO_COMPRESSION } from '../src/ml/compression.ts'
import { judgeOf } from '../src/ml/task.ts'
import { shiftedModel, type Weights } from '../src/ml/weights.ts'
import { attackArgs, hostileMembers } from './robustness-setting.ts'

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'examples/hardened/classify.yaml' },
    seeds: { type: 'string', default: '11,12,13' },
    settings: { type: 'string', default: 'clean,label-noise:1,label-noise:2,random-labels:1,random-labels:2' },
    'attack-args': { type: 'string' },
    out: { type: 'string', default: 'docs/results' },
    name: { type: 'string', default: 'update-value' },
    render: { type: 'boolean', default: false }
  }
})

/** One honest voter's view of one peer's update: gains of global + update (at its share) over global, and of its own update. */
interface Row {
  seed: number
  setting: string
  round: number
  voter: string
  proposer: string
  /** `honest, new`, `honest, good standing` or `honest, bad standing` (the proposer's standing as the record gives it), or the setting's attack. */
  group: string
  merged: boolean
  gain: Gains
  own?: Gains
}
interface Gains { logLikelihood: number, metric: number, sharpening?: number }

const STANDING = { new: 'honest, new', good: 'honest, good standing', bad: 'honest, bad standing' } as const

const MEASURES = [
  { key: 'logLikelihood', label: 'log-likelihood gain' },
  { key: 'metric', label: 'metric gain (no confidence in it)' },
  { key: 'sharpening', label: 'sharpening (mean entropy lowered)' }
] as const

const jsonPath = join(values.out, `${values.name}.json`)

async function collect (): Promise<Row[]> {
  const rows: Row[] = []
  const input = await readConfigFile(values.config)
  for (const seed of values.seeds.split(',').map(Number)) {
    for (const setting of values.settings.split(',')) {
      const [name = 'clean', h = '0'] = setting.split(':')
      const agents = Number(input.agents ?? 5)
      const bad = hostileMembers(Number(h), agents)
      const attack = { ...(name === 'random-labels' ? { kind: 'label-noise', rate: 1 } : { kind: name }), ...attackArgs(values['attack-args']) }
      const config = parseRunConfig({ ...input, seed, evalSplit: 'dev', attacks: name === 'clean' ? [] : bad.map(agent => ({ ...attack, agent })) } as typeof input)
      const dir = await mkdtemp(join(tmpdir(), 'conclave-update-value-'))
      const sim = await Simulation.create(config, { dir })
      try {
        await sim.charter()
        const judge = judgeOf(sim.task)
        const honest = sim.participants.filter((_, i) => !bad.includes(i + 1))
        for (let round = 1; round <= config.rounds; round++) {
          const global = honest[0]?.globalModel?.weights as Weights
          await sim.round(round)
          const state = honest[0]?.state
          const charter = state?.charter?.record
          if (state === undefined || charter === undefined) throw new Error('the federation has no charter')
          const scale = charter.acceptance?.scale === 'full' ? 1 : 1 / charter.members.length
          const format = { compression: charter.compression ?? NO_COMPRESSION, layout: global }
          const entries = (state.rounds.get(round)?.proposals ?? []).flatMap(id => state.proposals.get(id) ?? [])
          const deltas = new Map(await Promise.all(entries.map(async e => [e.signed.issuer, await fetchUpdate(sim.store, e.signed.record.delta, format)] as const)))
          for (const voter of honest) {
            const val = sim.shards[sim.participants.indexOf(voter)]?.val ?? []
            const measure = async (w: Weights): Promise<Gains> => ({
              logLikelihood: await judge.score(w, val),
              metric: (await sim.task.evaluate(w, val)).metric,
              ...(judge.entropy === undefined ? {} : { sharpening: -await judge.entropy(w, val) })
            })
            const base = await measure(global)
            const gainOf = async (delta: Weights | undefined): Promise<Gains | undefined> => {
              if (delta === undefined) return undefined
              const after = await measure(shiftedModel(global, delta, scale))
              return { logLikelihood: after.logLikelihood - base.logLikelihood, metric: after.metric - base.metric, ...(after.sharpening === undefined || base.sharpening === undefined ? {} : { sharpening: after.sharpening - base.sharpening }) }
            }
            const own = await gainOf(deltas.get(voter.did))
            for (const entry of entries) {
              if (entry.signed.issuer === voter.did) continue
              const index = charter.members.indexOf(entry.signed.issuer)
              const gain = await gainOf(deltas.get(entry.signed.issuer)) as Gains
              const group = bad.includes(index + 1) ? name : STANDING[state.standing(entry.block)]
              rows.push({ seed, setting, round, voter: voter.name, proposer: memberName(index), group, merged: entry.decision?.record.accepted === true, gain, ...(own === undefined ? {} : { own }) })
            }
          }
          console.error(`seed ${seed} · ${setting} · round ${round}: ${entries.length} updates measured by ${honest.length} honest voters`)
        }
      } finally {
        await sim.close()
        await rm(dir, { recursive: true, force: true })
      }
    }
  }
  return rows
}

/** A gain over the voter's own update's same gain; undefined where the own update gained nothing to compare with. */
function share (row: Row, key: typeof MEASURES[number]['key']): number | undefined {
  const own = row.own?.[key]
  const gain = row.gain[key]
  return own === undefined || gain === undefined || own <= 0 ? undefined : gain / own
}

function quantiles (xs: number[]): string {
  const sorted = [...xs].sort((a, b) => a - b)
  const at = (p: number): string => (sorted[Math.round(p * (sorted.length - 1))] as number).toFixed(3)
  return sorted.length === 0 ? '—' : [0.1, 0.25, 0.5, 0.75, 0.9].map(at).join(' · ')
}

function markdown ({ config, seeds, settings, args, rows }: Results): string {
  const groups = [...new Set(rows.map(r => r.group))].sort()
  const rounds = [...new Set(rows.map(r => r.round))].sort((a, b) => a - b)
  const lines = [
    '# What each update teaches an honest voter (dev split)',
    '',
    `Made by \`node bench/update-value.ts --config ${config} --seeds ${seeds} --settings ${settings}${args === undefined ? '' : ` --attack-args ${args}`}\` (the config's federation, its charter terms live; the last h members hostile; \`random-labels\`: label-noise at rate 1). For every honest voter and every peer's update, on the voter's validation examples: the update's gain at its share over the voter's own update's gain, 10% · 25% · median · 75% · 90% (votes whose own update gained nothing by that measure are left out). An honest proposer's group is its standing as the record gives it when the update is judged: new (on probation under the probation rule), good or bad.`,
    ''
  ]
  for (const round of rounds) {
    lines.push(`## Round ${round}`, '', `| group | votes | ${MEASURES.map(m => m.label).join(' | ')} |`, `|---|---:|${MEASURES.map(() => '---').join('|')}|`)
    for (const group of groups) {
      const of = rows.filter(r => r.round === round && r.group === group)
      if (of.length === 0) continue
      lines.push(`| ${group} | ${of.length} | ${MEASURES.map(m => quantiles(of.flatMap(r => share(r, m.key) ?? []))).join(' | ')} |`)
    }
    lines.push('')
  }
  lines.push(`![round 1: each update's gain over the voter's own, by group](${values.name}.svg)`, '')
  return lines.join('\n')
}

async function chart (rows: Row[]): Promise<string> {
  const data = rows.filter(r => r.round === 1).flatMap(r => MEASURES.flatMap(m => {
    const value = share(r, m.key)
    return value === undefined ? [] : [{ group: r.group, measure: m.label, value: Math.max(-1, Math.min(2, value)) }]
  }))
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Round 1: an update\'s gain over the voter\'s own update\'s (dev; clipped to [−1, 2])',
    data: { values: data },
    facet: { column: { field: 'measure', type: 'nominal', title: null } },
    spec: {
      width: 220,
      height: { step: 26 },
      mark: { type: 'boxplot', extent: 'min-max' },
      encoding: { y: { field: 'group', type: 'nominal', title: null }, x: { field: 'value', type: 'quantitative', title: 'gain / own update\'s gain' }, color: { field: 'group', type: 'nominal', legend: null } }
    }
  }
  return await vegaLiteSvg(spec)
}

/** What update-value.json holds: the command's settings (so `--render` redraws what they made) and every row. */
interface Results { config: string, seeds: string, settings: string, args?: string, rows: Row[] }

// Five significant digits: the measurements' own noise is far above that. The tables are drawn from the JSON as kept, so `--render` redraws them exactly.
const kept = (results: Results): string => JSON.stringify(results, (_, v: unknown) => typeof v === 'number' ? Number(v.toPrecision(5)) : v) + '\n'
const text = values.render ? await readFile(jsonPath, 'utf8') : kept({ config: values.config, seeds: values.seeds, settings: values.settings, ...(values['attack-args'] === undefined ? {} : { args: values['attack-args'] }), rows: await collect() })
if (!values.render) await writeFile(jsonPath, text)
const results = JSON.parse(text) as Results
await writeFile(join(values.out, `${values.name}.md`), markdown(results))
await writeFile(join(values.out, `${values.name}.svg`), await chart(results.rows))
console.log(markdown(results))
