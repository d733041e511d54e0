/**
 * What each attack of the harness does when nothing stops it: FedAvg of every update, the
 * hostile members' included, against the same federation with the hostile members absent
 * (robustness.md's "absent": Table 1's partition, 5 members, the last h hostile, 3 rounds).
 * bench:robustness measures what the acceptance rules keep out; this, what there was to keep
 * out — an attack that gains the model even merged costs the federation nothing when it
 * merges. Rows accumulate in OUT/undefended.json (one per task, seed, h, attack and its
 * settings, split); OUT/undefended.{md,svg} are drawn from all of them.
 *   npm run bench:undefended -- [--tasks classify,ner] [--seeds 1,2,3] [--hostile 1,2]
 *     [--attacks all|a,b] [--attack-args k=v,…] [--split test|dev] [--rounds R] [--out DIR]
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { Attack } from '../src/federation/attacks.ts'
import { runBaseline } from '../src/federation/baselines.ts'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { parseRunConfig } from '../src/federation/config.ts'
import { attackArgs, attackLabel, GRID_OPTIONS, hostileMembers, robustnessBase } from './robustness-setting.ts'

const { values } = parseArgs({ options: GRID_OPTIONS })
const KINDS = Attack.options.map(a => a.shape.kind.value)
const attacks = values.attacks === 'all' ? KINDS : values.attacks.split(',')
const unknown = attacks.filter(a => !(KINDS as string[]).includes(a))
if (unknown.length > 0) throw new Error(`--attacks: the harness has no ${unknown.join(', ')} (it has ${KINDS.join(', ')})`)
const rounds = Number(values.rounds)
/** An attack's own settings where the command sets them (`rate=1`, `perturbation=std`), recorded per row. */
const args = attackArgs(values['attack-args'])

interface Row {
  task: string, seed: number, hostile: number, attack: string, args?: Record<string, number | string>, split: string, rounds: number
  /** Final metric of FedAvg with every update merged, and with the hostile members absent. */
  undefended: number, absent: number
}
const key = (r: Omit<Row, 'undefended' | 'absent'>): string => JSON.stringify([r.task, r.seed, r.hostile, r.attack, r.args ?? {}, r.split, r.rounds])

await mkdir(values.out, { recursive: true })
const jsonPath = join(values.out, 'undefended.json')
const rows: Row[] = await readFile(jsonPath, 'utf8').then(t => (JSON.parse(t) as { rows: Row[] }).rows, () => [])
const done = new Map(rows.map(r => [key(r), r]))

for (const task of values.tasks.split(',')) {
  for (const seed of values.seeds.split(',').map(Number)) {
    for (const hostile of values.hostile.split(',').map(Number)) {
      const bad = hostileMembers(hostile)
      const base = robustnessBase({ task, seed, rounds, split: values.split })
      let absent: number | undefined
      for (const attack of attacks) {
        const cell = { task, seed, hostile, attack, ...(args === undefined ? {} : { args }), split: values.split, rounds }
        if (done.has(key(cell))) continue
        absent ??= (await runBaseline('fedavg', parseRunConfig(base), { absent: bad })).rounds.at(-1)?.metric.value ?? Number.NaN
        const config = parseRunConfig({ ...base, attacks: bad.map(agent => ({ kind: attack, agent, ...args })) })
        const undefended = (await runBaseline('fedavg', config)).rounds.at(-1)?.metric.value ?? Number.NaN
        const row = { ...cell, undefended, absent }
        rows.push(row)
        done.set(key(row), row)
        console.log(`${task} seed ${seed} · ${hostile} hostile · ${attackLabel(row)}: ${(100 * undefended).toFixed(2)} undefended (absent ${(100 * absent).toFixed(2)})`)
        await writeFile(jsonPath, JSON.stringify({ rows }, null, 1) + '\n')
      }
    }
  }
}

/** Rows grouped by task, split, h and attack with its settings, in that order (attacks in the harness's). */
const groups = ([...Map.groupBy(rows, r => JSON.stringify([r.task, r.split, r.hostile, attackLabel(r)])).values()] as Array<[Row, ...Row[]]>)
  .sort(([a], [b]) => a.task.localeCompare(b.task) || a.split.localeCompare(b.split) || a.hostile - b.hostile ||
    KINDS.indexOf(a.attack as typeof KINDS[number]) - KINDS.indexOf(b.attack as typeof KINDS[number]) || attackLabel(a).localeCompare(attackLabel(b)))
const points = (r: Row): number => 100 * (r.undefended - r.absent)
const fmt = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`

const markdown = [
  '# Undefended: what each attack does when every update merges',
  '',
  'Made by `npm run bench:undefended` (bench/undefended.ts; rows accumulate, one command per attack setting). FedAvg of every member\'s update, the hostile members\' included, against FedAvg with the hostile members absent: the same setting as robustness.md (Table 1\'s partition, Dirichlet α = 1, 5 members, the last h hostile, 3 rounds, classify with server momentum 0.5). A negative gap is what an acceptance rule has to keep out; robustness.md says what the rules do keep out.',
  '',
  '| task | split | hostile of 5 | attack | seeds | undefended − absent (points), mean | per seed |',
  '|---|---|---:|---|---|---:|---|',
  ...groups.map(g => {
    const [r] = g
    const gaps = g.map(points)
    return `| ${r.task} | ${r.split} | ${r.hostile} | ${attackLabel(r)} | ${g.map(x => x.seed).join(' · ')} | ${fmt(gaps.reduce((s, x) => s + x, 0) / gaps.length)} | ${gaps.map(fmt).join(' · ')} |`
  }),
  ''
].join('\n')
await writeFile(join(values.out, 'undefended.md'), markdown)

const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: 'Undefended: final metric − absent (points), every update merged',
  data: { values: rows.map(r => ({ task: `${r.task} (${r.split})`, attack: attackLabel(r), hostile: `${r.hostile} of 5 hostile`, gap: points(r) })) },
  facet: { row: { field: 'task', type: 'nominal', title: null }, column: { field: 'hostile', type: 'nominal', title: null } },
  spec: {
    width: 260,
    height: { step: 14 },
    layer: [
      { mark: { type: 'rule', color: '#888' }, encoding: { x: { datum: 0 } } },
      { mark: { type: 'point', filled: true }, encoding: { y: { field: 'attack', type: 'nominal', title: null, axis: { labelLimit: 320 } }, x: { field: 'gap', type: 'quantitative', title: 'undefended − absent (points)' } } }
    ]
  },
  resolve: { scale: { y: 'independent' } }
}
await writeFile(join(values.out, 'undefended.svg'), await vegaLiteSvg(spec))
console.log(markdown)
