/**
 * `npm run bench:robustness -- [--tasks classify,ner] [--seeds 1,2,3] [--hostile 1,2] [--attacks all|a,b]
 *  [--rounds R] [--split test|dev] [--acceptance tolerance|improve|marginal|classwise|standing|probation] [--min-gain G] [--from-round R] [--attack-args k=v,…] [--quorum F] [--exclude-rejected] [--strikes S] [--gaining-vouchers] [--probation-gain P] [--bad-on-probation] [--probation-once] [--min-sharpening S] [--sharpening-yardstick round] [--min-movement M] [--max-round-cosine C] [--out DIR] [--render]` (`--hostile 0 --attacks none`: no attack): every attack of the harness against a 5-member
 * federation with its last h members hostile, next to the same federation with those members simply
 * absent (FedAvg of the honest members' updates: what a vote that keeps exactly the hostile updates out
 * ends with, model for model). Per cell: the final metric, the gap to the absent-hostile run, the share of
 * hostile updates merged and of honest ones rejected. Writes robustness.{json,md} and a heatmap of the gaps.
 * Rows are saved as they finish, so a long grid can be continued (finished cells are skipped). Members vote
 * by the run config's default acceptance rule (tolerance) unless --acceptance names another; a row names
 * its rule, and the tables show each rule's cells side by side. `--from-round R`: the hostile members behave
 * until round R, so the record vouches for them before they attack (their updates count as hostile from R),
 * and the absent federation is the one they took part in honestly until R and left from R.
 * `--attack-args rate=1`: the attacks' own settings (attacks.ts), instead of their defaults. `--quorum F`:
 * the share of the peers that must accept (default 0.5; Table 1's is 1, every peer).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { TopLevelSpec } from 'vega-lite'
import { z } from 'zod'
import { Attack } from '../src/federation/attacks.ts'
import { runBaseline } from '../src/federation/baselines.ts'
import { vegaLiteSvg } from '../src/federation/charts.ts'
import { memberName, parseRunConfig, readConfigFile, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { readRunView } from '../src/federation/run-view.ts'
import { AGENTS, attackArgs, attackLabel, GRID_OPTIONS, hostileMembers, robustnessBase, termsOf } from './robustness-setting.ts'
import { AcceptanceRuleName } from '../src/core/terms.ts'

/**
 * Every attack of the harness in the tables' order (the issue's: update attacks, then data, then the rest), and
 * `none` (with --hostile 0): the federation without an attack, for how many honest updates the rule rejects.
 */
const ATTACKS = ['none', 'scale', 'random-noise', 'sign-flip', 'label-flip', 'label-noise', 'free-ride', 'stale', 'inflate-samples', 'collude', 'alie', 'min-max', 'adaptive-flip'] as const satisfies ReadonlyArray<'none' | Attack['kind']>
/** The attacks the issue's bar names (with no attack: how many honest updates a rule rejects); the harness's others go beyond it. */
const ISSUE_GRID: readonly string[] = ['none', 'scale', 'random-noise', 'sign-flip', 'label-flip', 'label-noise', 'free-ride', 'stale', 'inflate-samples', 'collude', 'alie']
// An attack added to the harness and not here would be left out of `--attacks all` without a word.
const unlisted = Attack.options.map(a => a.shape.kind.value).filter(kind => !(ATTACKS as readonly string[]).includes(kind))
if (unlisted.length > 0) throw new Error(`bench/robustness.ts does not list the harness's ${unlisted.join(', ')}`)
const { values } = parseArgs({
  options: {
    ...GRID_OPTIONS,
    acceptance: { type: 'string', default: 'tolerance' },
    'min-gain': { type: 'string' },
    'from-round': { type: 'string', default: '1' },
    'exclude-rejected': { type: 'boolean', default: false },
    strikes: { type: 'string', default: '1' },
    'gaining-vouchers': { type: 'boolean', default: false },
    'probation-gain': { type: 'string' },
    'bad-on-probation': { type: 'boolean', default: false },
    'probation-once': { type: 'boolean', default: false },
    'min-sharpening': { type: 'string' },
    'sharpening-yardstick': { type: 'string' },
    'min-movement': { type: 'string' },
    'max-round-cosine': { type: 'string' },
    quorum: { type: 'string', default: '0.5' },
    render: { type: 'boolean', default: false }
  }
})
const tasks = values.tasks.split(',')
const seeds = values.seeds.split(',').map(Number)
const hostiles = values.hostile.split(',').map(Number)
const attacks = values.attacks === 'all' ? ATTACKS.filter(a => a !== 'none') : values.attacks.split(',')
const rounds = Number(values.rounds)
const acceptance = AcceptanceRuleName.parse(values.acceptance)
/** The rule's minGain where the command sets it (a row records it); else the rule's default. */
const minGain = values['min-gain'] === undefined ? undefined : Number(values['min-gain'])
/** The round the hostile members turn in (1: hostile throughout; later: honest until then, so the record vouches for them). */
const fromRound = Number(values['from-round'])
const excludeRejected = values['exclude-rejected']
const strikes = Number(values.strikes)
const gainingVouchers = values['gaining-vouchers']
/** The probation rule's probationGain where the command sets it (a row records it); else the rule's default. */
const probationGain = values['probation-gain'] === undefined ? undefined : Number(values['probation-gain'])
const badOnProbation = values['bad-on-probation']
const probationOnce = values['probation-once']
/** The probation rule's minSharpening where the command sets it (a row records it); else not asked. */
const minSharpening = values['min-sharpening'] === undefined ? undefined : Number(values['min-sharpening'])
/** What minSharpening measures against where the command says `round` (a row records it); else the voter's own update. */
const sharpeningYardstick = values['sharpening-yardstick'] === undefined ? undefined : z.literal('round').parse(values['sharpening-yardstick'])
/** The probation rule's minMovement where the command sets it (a row records it); else not asked. */
const minMovement = values['min-movement'] === undefined ? undefined : Number(values['min-movement'])
/** The geometry bound maxRoundCosine where the command sets it (a row records it); else not asked. */
const maxRoundCosine = values['max-round-cosine'] === undefined ? undefined : Number(values['max-round-cosine'])
const quorum = Number(values.quorum)
if (!(quorum > 0 && quorum <= 1)) throw new Error('--quorum takes the share of the peers that must accept, in (0, 1]')
/** An attack's own settings where the command sets them (`rate=1`, `perturbation=std`), recorded per row. */
const args = attackArgs(values['attack-args'])
if (!Number.isInteger(fromRound) || fromRound < 1 || fromRound > rounds) throw new Error(`--from-round takes a round of the run, 1 to ${rounds}`)
if (attacks.includes('none') !== hostiles.every(h => h === 0)) throw new Error('--attacks none goes with --hostile 0, and only it')
const command = values.render ? 'npm run bench:robustness -- --render' : `npm run bench:robustness -- --tasks ${values.tasks} --seeds ${values.seeds} --hostile ${values.hostile} --attacks ${values.attacks} --rounds ${rounds} --split ${values.split} --acceptance ${acceptance}${minGain === undefined ? '' : ` --min-gain=${minGain}`}${fromRound === 1 ? '' : ` --from-round ${fromRound}`}${excludeRejected ? ' --exclude-rejected' : ''}${strikes === 1 ? '' : ` --strikes ${strikes}`}${gainingVouchers ? ' --gaining-vouchers' : ''}${probationGain === undefined ? '' : ` --probation-gain ${probationGain}`}${badOnProbation ? ' --bad-on-probation' : ''}${probationOnce ? ' --probation-once' : ''}${minSharpening === undefined ? '' : ` --min-sharpening ${minSharpening}`}${sharpeningYardstick === undefined ? '' : ' --sharpening-yardstick round'}${minMovement === undefined ? '' : ` --min-movement ${minMovement}`}${maxRoundCosine === undefined ? '' : ` --max-round-cosine ${maxRoundCosine}`}${values['attack-args'] === undefined ? '' : ` --attack-args ${values['attack-args']}`}${quorum === 0.5 ? '' : ` --quorum ${quorum}`}`

interface Row {
  task: string, seed: number, hostile: number, attack: string, rounds: number, split: string
  /** The members' acceptance rule (rows written before rules were named: tolerance). */
  acceptance?: AcceptanceRuleName
  /** The rule's minGain where the command set it (absent: the rule's default). */
  minGain?: number
  /** The round the hostile members turned in, where later than 1. */
  fromRound?: number
  /** Whether the votes of members rejected in an earlier round stopped counting (excludeRejected). */
  excludeRejected?: true
  /** How many rejected updates put a member in bad standing, where not one. */
  strikes?: number
  /** Whether only voters whose own update gained them could accept a newcomer (gainingVouchers). */
  gainingVouchers?: true
  /** The probation rule's probationGain where the command set it (absent: the rule's default). */
  probationGain?: number
  /** Whether a member in bad standing had to pass the newcomer's test too (badOnProbation). */
  badOnProbation?: true
  /** Whether a member refused on probation, short of its strikes, was judged as in good standing (probationOnce). */
  probationOnce?: true
  /** The probation rule's minSharpening where the command set it (absent: not asked). */
  minSharpening?: number
  /** What minSharpening measured against where the command said `round` (absent: the voter's own update). */
  sharpeningYardstick?: 'round'
  /** The probation rule's minMovement where the command set it (absent: not asked). */
  minMovement?: number
  /** The geometry bound maxRoundCosine where the command set it (absent: not asked). */
  maxRoundCosine?: number
  /** The attack's own settings, where the command set them. */
  args?: Record<string, number | string>
  /** The share of the peers that had to accept, where not 0.5. */
  quorum?: number
  /** Final metric of the federation under attack, and of the same federation with the hostile members absent. */
  metric: number, absent: number
  hostileMerged: number, hostileProposed: number, honestRejected: number, honestProposed: number
  /** The same counts round by round, as the ledger decided them (the hostile members' merges from round 1, whatever fromRound); rows written before 2026-12-04 evening lack them. */
  byRound?: Array<{ round: number, hostileMerged: number, honestRejected: number }>
}
const jsonPath = join(values.out, 'robustness.json')
const saved: Row[] = await readFile(jsonPath, 'utf8').then(t => (JSON.parse(t) as { rows: Row[] }).rows, () => [])
const rows = saved
const key = (r: Pick<Row, 'task' | 'seed' | 'hostile' | 'attack' | 'rounds' | 'split' | 'acceptance' | 'minGain' | 'fromRound' | 'excludeRejected' | 'strikes' | 'gainingVouchers' | 'probationGain' | 'badOnProbation' | 'probationOnce' | 'minSharpening' | 'sharpeningYardstick' | 'minMovement' | 'maxRoundCosine' | 'args' | 'quorum'>): string => `${r.task}/${r.seed}/${r.hostile}/${r.attack}/${r.rounds}/${r.split}/${r.acceptance ?? 'tolerance'}${r.minGain === undefined ? '' : `/${r.minGain}`}${r.fromRound === undefined ? '' : `/from${r.fromRound}`}${r.excludeRejected === true ? '/excluding' : ''}${r.strikes === undefined ? '' : `/strikes${r.strikes}`}${r.gainingVouchers === true ? '/vouching' : ''}${r.probationGain === undefined ? '' : `/pg${r.probationGain}`}${r.badOnProbation === true ? '/badprobation' : ''}${r.probationOnce === true ? '/once' : ''}${r.minSharpening === undefined ? '' : `/ms${r.minSharpening}`}${r.sharpeningYardstick === undefined ? '' : '/round'}${r.minMovement === undefined ? '' : `/mm${r.minMovement}`}${r.maxRoundCosine === undefined ? '' : `/rc${r.maxRoundCosine}`}${r.args === undefined ? '' : `/${JSON.stringify(r.args)}`}${r.quorum === undefined ? '' : `/q${r.quorum}`}`
const done = new Set(rows.map(key))
const ruleOf = (r: Row): AcceptanceRuleName => r.acceptance ?? 'tolerance'
/** A rule as the tables name it: with its minGain where a command set one. */
const ruleLabel = (r: Row): string => `${ruleOf(r)}${r.minGain === undefined && r.probationGain === undefined ? '' : ` (${[r.minGain === undefined ? undefined : `minGain ${r.minGain}`, r.probationGain === undefined ? undefined : `probationGain ${r.probationGain}`].filter(x => x !== undefined).join(', ')})`}${r.excludeRejected === true ? ', rejected members\' votes dropped' : ''}${r.strikes === undefined ? '' : `, ${r.strikes} strikes`}${r.gainingVouchers === true ? ', gaining vouchers' : ''}${r.badOnProbation === true ? ', bad standing on probation' : ''}${r.probationOnce === true ? ', probation once' : ''}${r.minSharpening === undefined ? '' : `, sharpening ${r.minSharpening}${r.sharpeningYardstick === undefined ? '' : ' of the round\'s median'}`}${r.minMovement === undefined ? '' : `, movement ${r.minMovement} of the round's median`}${r.maxRoundCosine === undefined ? '' : `, cosine with the round's earlier mean ≤ ${r.maxRoundCosine}`}${r.quorum === undefined ? '' : `, quorum ${r.quorum} of the peers`}`
/** An attack as the tables name it: with the round its members turned in, where later than 1. */
/** Every attack label the rows hold, in the harness's order, each kind by the round it starts in. */
const attackLabels = (): string[] => [...new Map(rows.map(r => [attackLabel(r), r])).values()]
  .sort((a, b) => ATTACKS.indexOf(a.attack as typeof ATTACKS[number]) - ATTACKS.indexOf(b.attack as typeof ATTACKS[number]) || (a.fromRound ?? 1) - (b.fromRound ?? 1) || JSON.stringify(a.args ?? {}).localeCompare(JSON.stringify(b.args ?? {})))
  .map(attackLabel)

if (!values.render) {
  for (const task of tasks) {
    for (const seed of seeds) {
      for (const hostile of hostiles) {
        const bad = hostileMembers(hostile)
        const base = { ...robustnessBase({ task, seed, rounds, split: values.split }), quorum: { kind: 'fraction', fraction: quorum }, acceptance, excludeRejected, strikes, gainingVouchers, badOnProbation, probationOnce, ...(minGain === undefined ? {} : { minGain }), ...(probationGain === undefined ? {} : { probationGain }), ...(minSharpening === undefined ? {} : { minSharpening }), ...(sharpeningYardstick === undefined ? {} : { sharpeningYardstick }), ...(minMovement === undefined ? {} : { minMovement }), ...(maxRoundCosine === undefined ? {} : { robustness: { maxRoundCosine } }) } as unknown as RunConfigInput
        let absent: number | undefined
        for (const attack of attacks) {
          const cell = { task, seed, hostile, attack, rounds, split: values.split, acceptance, ...(minGain === undefined ? {} : { minGain }), ...(fromRound === 1 ? {} : { fromRound }), ...(excludeRejected ? { excludeRejected: true as const } : {}), ...(strikes === 1 ? {} : { strikes }), ...(gainingVouchers ? { gainingVouchers: true as const } : {}), ...(probationGain === undefined ? {} : { probationGain }), ...(badOnProbation ? { badOnProbation: true as const } : {}), ...(probationOnce ? { probationOnce: true as const } : {}), ...(minSharpening === undefined ? {} : { minSharpening }), ...(sharpeningYardstick === undefined ? {} : { sharpeningYardstick }), ...(minMovement === undefined ? {} : { minMovement }), ...(maxRoundCosine === undefined ? {} : { maxRoundCosine }), ...(args === undefined ? {} : { args }), ...(quorum === 0.5 ? {} : { quorum }) }
          if (done.has(key(cell))) continue
          absent ??= (await runBaseline('fedavg', parseRunConfig(base), { absent: bad, absentFrom: fromRound })).rounds.at(-1)?.metric.value ?? Number.NaN
          const out = await mkdtemp(join(tmpdir(), 'conclave-robustness-'))
          const config = parseRunConfig({ ...base, attacks: bad.map(agent => ({ kind: attack, agent, fromRound, ...args })) })
          const report = await runFederation(config, { out, force: true })
          const hostileNames = new Set(bad.map(a => memberName(a - 1)))
          const { reputation } = await readRunView(join(out, 'ledger'))
          /** The hostile (or honest) members' merged (or rejected) updates up to `round`, as the ledger decided them. */
          const upTo = (round: number, isHostile: boolean, field: 'accepted' | 'rejected'): number => reputation.filter(r => r.round === round && hostileNames.has(r.member.name) === isHostile).reduce((n, r) => n + r[field], 0)
          const byRound = Array.from({ length: rounds }, (_, i) => i + 1).map(round => ({ round, hostileMerged: upTo(round, true, 'accepted') - upTo(round - 1, true, 'accepted'), honestRejected: upTo(round, false, 'rejected') - upTo(round - 1, false, 'rejected') }))
          // A member that turned later is hostile only from then: what it had merged before, honestly, is not counted.
          const mergedBefore = fromRound === 1 ? 0 : upTo(fromRound - 1, true, 'accepted')
          await rm(out, { recursive: true, force: true })
          const of = (isHostile: boolean): typeof report.agents => report.agents.filter(a => hostileNames.has(a.name) === isHostile)
          const row: Row = {
            ...cell,
            metric: report.rounds.at(-1)?.metric.value ?? Number.NaN,
            absent,
            // Refused proposals (re-sent, inflated) never reach a vote: they count as proposed and not merged.
            hostileMerged: of(true).reduce((n, a) => n + a.accepted, 0) - mergedBefore,
            hostileProposed: (rounds - fromRound + 1) * hostile,
            honestRejected: of(false).reduce((n, a) => n + a.rejected, 0),
            honestProposed: rounds * (AGENTS - hostile),
            byRound
          }
          rows.push(row)
          done.add(key(row))
          process.stderr.write(`${task} seed ${seed} · ${hostile} hostile · ${attackLabel(row)}: ${(100 * row.metric).toFixed(2)} (absent ${(100 * absent).toFixed(2)}) · hostile merged ${row.hostileMerged}/${row.hostileProposed} · honest rejected ${row.honestRejected}/${row.honestProposed}\n`)
          await save()
        }
      }
    }
  }
}
await save()

async function save (): Promise<void> {
  await mkdir(values.out, { recursive: true })
  await writeFile(jsonPath, JSON.stringify({ command, agents: AGENTS, rows }, null, 2) + '\n')
  await writeFile(join(values.out, 'robustness.md'), markdown(await hardened()))
  await writeFile(join(values.out, 'robustness-heatmap.svg'), await heatmap())
}

interface Cell { task: string, rule: string, hostile: number, attack: string, seeds: number, gap: number, merged: number, rejected: number, pass: boolean }
function cells (): Cell[] {
  const out: Cell[] = []
  for (const task of [...new Set(rows.map(r => r.task))]) {
    // Rules in the order they are defined, each by its settings; labels only name them.
    const byRule = (a: Row, b: Row): number => AcceptanceRuleName.options.indexOf(ruleOf(a)) - AcceptanceRuleName.options.indexOf(ruleOf(b)) || ruleLabel(a).localeCompare(ruleLabel(b))
    const labels = [...new Set([...rows].sort(byRule).map(ruleLabel))]
    for (const rule of labels) {
      for (const hostile of [...new Set(rows.map(r => r.hostile))].sort()) {
        for (const attack of attackLabels()) {
          const rs = rows.filter(r => r.task === task && ruleLabel(r) === rule && r.hostile === hostile && attackLabel(r) === attack)
          if (rs.length === 0) continue
          const gap = 100 * rs.reduce((s, r) => s + (r.metric - r.absent), 0) / rs.length
          const merged = rs.reduce((s, r) => s + r.hostileMerged, 0) / Math.max(1, rs.reduce((s, r) => s + r.hostileProposed, 0))
          const rejected = rs.reduce((s, r) => s + r.honestRejected, 0) / rs.reduce((s, r) => s + r.honestProposed, 0)
          // ALIE's single updates may be indistinguishable from honest ones: judged by the final metric alone.
          const pass = gap >= -1 && (rs[0]?.attack === 'alie' || merged <= 0.05) && rejected <= 0.05
          out.push({ task, rule, hostile, attack, seeds: rs.length, gap, merged, rejected, pass })
        }
      }
    }
  }
  return out
}

/**
 * Each task's hardened terms (examples/hardened/<task>.yaml) against the issue's grid (its attacks at their own
 * defaults from round 1, the rows' seeds on test, and no attack) and against whatever else was run under the same terms.
 */
async function hardened (): Promise<string[]> {
  const lines: string[] = []
  const describe = (c: Cell): string => `${c.attack} with ${c.hostile} hostile (${signed(c.gap)} points, ${percent(c.merged)} hostile merged, ${percent(c.rejected)} honest rejected)`
  for (const task of [...new Set(rows.map(r => r.task))]) {
    const path = `examples/hardened/${task}.yaml`
    const terms = termsOf(parseRunConfig(await readConfigFile(path)))
    const measured = rows.find(r => r.split === 'test' && r.quorum === undefined && termsOf(r) === terms)
    if (measured === undefined) continue
    const all = cells().filter(c => c.task === task && c.rule === ruleLabel(measured))
    const grid = all.filter(c => ISSUE_GRID.includes(c.attack))
    const beyond = all.filter(c => !ISSUE_GRID.includes(c.attack))
    const missed = grid.filter(c => !c.pass).map(describe)
    lines.push(`- **${task}**, \`${path}\` (${ruleLabel(measured)}): **${grid.length - missed.length} of ${grid.length} of the issue's cells meet the bar**${missed.length === 0 ? '' : `; not met: ${missed.join('; ')}`}. Beyond the issue's list: ${beyond.map(c => `${describe(c)}${c.pass ? '' : ' ✗'}`).join('; ')}.`)
  }
  return lines
}

function signed (gap: number): string { return `${gap >= 0 ? '+' : ''}${gap.toFixed(2)}` }
function percent (share: number): string { return `${(100 * share).toFixed(1)}%` }

function markdown (headline: string[]): string {
  const table = ['| task | acceptance rule | hostile of 5 | attack | seeds | metric − absent (points) | hostile merged | honest rejected | bar met |', '|---|---|---:|---|---:|---:|---:|---:|---|']
  for (const c of cells()) table.push(`| ${c.task} | ${c.rule} | ${c.hostile} | ${c.attack} | ${c.seeds} | ${signed(c.gap)} | ${percent(c.merged)} | ${percent(c.rejected)} | ${c.pass ? 'yes' : '**no**'} |`)
  return `# Robustness: every attack against a 5-member federation\n\nMade by \`npm run bench:robustness\`, one command per rule and grid (robustness-selection.md names each; rows accumulate, and each row in robustness.json names its seed, rounds, split and rule; the last command: \`${command}\`).\nSetting: Table 1's partition (Dirichlet α = 1), quorum ⌈(N−1)/2⌉ = 2 of 4 peers unless the rule's label names another, the members' acceptance rule as the table says (src/federation/acceptance.ts; robustness-selection.md says how its settings were chosen), the last h members hostile; "absent" is FedAvg of the honest members alone (the federation with the hostile members simply absent). The bar: metric within 1.0 point of absent, hostile updates merged ≤ 5% (ALIE: the metric alone), honest updates rejected ≤ 5%.\n\n${headline.length === 0 ? '' : `## The hardened terms\n\nThe terms examples/hardened/ charters (chosen on dev: robustness-selection.md), with 1 and 2 of 5 members hostile, seeds ${[...new Set(rows.filter(r => r.split === 'test').map(r => r.seed))].sort((a, b) => a - b).join(', ')} on test (✗: bar not met):\n\n${headline.join('\n')}\n\n## Every rule measured\n\n`}${table.join('\n')}\n\n![gap to the absent-hostile federation](robustness-heatmap.svg)\n`
}

async function heatmap (): Promise<string> {
  const data = cells().map(c => ({ ...c, row: `${c.task} · ${c.rule} · ${c.hostile} hostile`, label: `${c.gap >= 0 ? '+' : ''}${c.gap.toFixed(1)}${c.pass ? '' : ' ✗'}` }))
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Final metric minus the federation without its hostile members (points; ✗: bar not met)',
    data: { values: data },
    width: { step: 58 },
    height: { step: 30 },
    encoding: { x: { field: 'attack', type: 'nominal', sort: attackLabels(), title: null }, y: { field: 'row', type: 'nominal', title: null } },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'gap', type: 'quantitative', title: 'points', scale: { domain: [-10, 0, 2], range: ['#b2182b', '#f7f7f7', '#2166ac'], clamp: true } } } },
      { mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'label' } } }
    ]
  }
  return await vegaLiteSvg(spec)
}
