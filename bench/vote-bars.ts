/**
 * `node bench/vote-bars.ts [--task classify|ner] [--seeds 11,12,13] [--settings clean,label-flip:1,label-flip:2]
 *  [--acceptance classwise|probation|…] [--class-ratio K] [--min-gain G] [--probation-gain P] [--exclude-rejected]
 *  [--strikes S] [--gaining-vouchers] [--bad-on-probation] [--probation-once] [--min-sharpening T] [--sharpening-yardstick round] [--min-movement M] [--votes FILE[,FILE…]] [--no-collect] [--bar classRatio|minGain|probationGain|minSharpening|minMovement] [--bars 1,1.4,1.8]`:
 * chooses a vote rule's bar on the DEV split only (the test split is never read).
 * Runs the task as the robustness bench does (5 members, quorum 2 of 4, 3 rounds, the last h members
 * hostile) under the given rule and settings (by default `classwise` with ratio 1: the runs decide as
 * the marginal rule does, and sign each class's scores; standing and probation take the rule's classRatio, 1.8, unless given), keeps every vote with the measurement it signs,
 * and writes them to --votes (--no-collect reads them from there instead, several files joined, and the
 * rule's flags given replace the collected terms' for the re-decision). Then
 * prints, per setting, what honest voters measured, and re-decides every vote offline at each candidate
 * value of --bar, round by round: each proposer's standing and, under excludeRejected, whose votes
 * count follow from the re-decided rounds before (an honest voter, or a label-flipper voting by the
 * rule on its own clean validation data, decides again from its signed numbers; a colluder's forged
 * vote stands). The measurements stay those of the live run, whose earlier rounds merged what the
 * live bar merged: a counterfactual round's model is not re-trained.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { requiredAmongCounted, requiredOf } from '../src/core/quorum.ts'
import { classEffects, roundMovement, roundSharpening, type Standing } from '../src/federation/acceptance.ts'
import { ruling } from '../src/federation/acceptance-terms.ts'
import { memberName, parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { standingOf } from '../src/federation/state.ts'
import { TABLE1_BASE } from './table1-setting.ts'
import { AcceptanceTerms, type Measured, RULE_SETTINGS } from '../src/core/terms.ts'

const { values } = parseArgs({
  options: {
    task: { type: 'string', default: 'classify' },
    seeds: { type: 'string', default: '11,12,13' },
    settings: { type: 'string', default: 'clean,label-flip:1,label-flip:2' },
    acceptance: { type: 'string', default: 'classwise' },
    'class-ratio': { type: 'string' },
    'min-gain': { type: 'string' },
    'probation-gain': { type: 'string' },
    'exclude-rejected': { type: 'boolean', default: false },
    strikes: { type: 'string' },
    'gaining-vouchers': { type: 'boolean', default: false },
    'bad-on-probation': { type: 'boolean', default: false },
    'probation-once': { type: 'boolean', default: false },
    'min-sharpening': { type: 'string' },
    'sharpening-yardstick': { type: 'string' },
    'min-movement': { type: 'string' },
    votes: { type: 'string', default: '/tmp/classwise-votes.json' },
    bar: { type: 'string', default: 'classRatio' },
    bars: { type: 'string', default: '1,1.2,1.4,1.5,1.6,1.8,2,2.5' },
    collect: { type: 'boolean', default: true }
  },
  allowNegative: true
})
const AGENTS = 5
const QUORUM = { kind: 'fraction', fraction: 0.5 } as const
const BARS = ['classRatio', 'minGain', 'probationGain', 'minSharpening', 'minMovement', 'robustness.maxNormRatio', 'robustness.minCosine', 'robustness.minHistoryCosine'] as const
const bar = values.bar as typeof BARS[number]
if (!BARS.includes(bar)) throw new Error(`--bar takes one of ${BARS.join(', ')}`)
/** The terms with the bar under selection set to `value` (a geometry bound inside `robustness`). */
const withBar = (terms: AcceptanceTerms, value: number): AcceptanceTerms => {
  const [head, bound] = bar.split('.')
  if (bound === undefined) return { ...terms, [bar]: value }
  if (terms.robustness === undefined) throw new Error(`${head ?? ''} is off in the collected terms`)
  return { ...terms, robustness: { ...terms.robustness, [bound]: value } }
}

interface CastVote { setting: string, seed: number, round: number, proposal: string, proposer: string, voter: string, proposerHostile: boolean, voterHostile: boolean, accept: boolean, measurement: Measured | { unusable: string } }
interface Collected { terms: AcceptanceTerms, votes: CastVote[], runs: Array<{ setting: string, seed: number, metric: number, hostileMerged: number, honestRejected: number }> }

/**
 * The classRatio the live runs decide by: the command's; else 1 under classwise (its runs then decide as the
 * marginal rule does, and sign each class's scores for the ratio's selection), and the rule's default (1.8) under
 * standing and probation, as `conclave run` and the robustness bench use it (before 2026-12-04 these got 1 too).
 */
function classRatioOf (acceptance: string): { classRatio?: number } {
  if (!(RULE_SETTINGS.classRatio as readonly string[]).includes(acceptance)) return {}
  if (values['class-ratio'] !== undefined) return { classRatio: Number(values['class-ratio']) }
  return acceptance === 'classwise' ? { classRatio: 1 } : {}
}

/** What minSharpening measures against where the command says `round`; else the voter's own update. */
const yardstick = values['sharpening-yardstick'] === undefined ? {} : { sharpeningYardstick: z.literal('round').parse(values['sharpening-yardstick']) }

async function collect (): Promise<Collected> {
  const votes: CastVote[] = []
  const runs: Collected['runs'] = []
  let terms: AcceptanceTerms | undefined
  const optional = (name: 'min-gain' | 'probation-gain' | 'min-sharpening' | 'min-movement', key: string): Record<string, number> => values[name] === undefined ? {} : { [key]: Number(values[name]) }
  for (const seed of values.seeds.split(',').map(Number)) {
    for (const setting of values.settings.split(',')) {
      const [attack, h = '0'] = setting.split(':')
      const bad = Array.from({ length: Number(h) }, (_, i) => AGENTS - i)
      const config = parseRunConfig({
        ...TABLE1_BASE, agents: AGENTS, quorum: QUORUM, rounds: 3, seed, task: { kind: values.task }, evalSplit: 'dev', momentum: values.task === 'classify' ? 0.5 : 0,
        acceptance: values.acceptance, ...classRatioOf(values.acceptance), ...optional('min-gain', 'minGain'), ...optional('probation-gain', 'probationGain'), ...optional('min-sharpening', 'minSharpening'), ...optional('min-movement', 'minMovement'),
        excludeRejected: values['exclude-rejected'], strikes: Number(values.strikes ?? 1), gainingVouchers: values['gaining-vouchers'], badOnProbation: values['bad-on-probation'], probationOnce: values['probation-once'], ...yardstick,
        attacks: attack === 'clean' ? [] : bad.map(agent => ({ kind: attack, agent }))
      } as unknown as RunConfigInput)
      const out = await mkdtemp(join(tmpdir(), 'conclave-vote-bars-'))
      const report = await runFederation(config, { out, force: true })
      const names = new Map(report.agents.map(a => [a.did, a.name]))
      const hostile = new Set(report.agents.filter(a => bad.map(b => memberName(b - 1)).includes(a.name)).map(a => a.did))
      const blocks = (await readFile(join(out, 'ledger', 'tangle.jsonl'), 'utf8')).trim().split('\n').slice(1).map(l => {
        const { id, record } = JSON.parse(l) as { id: string, record: string }
        // The run's own ledger, just checked by the run: its JWTs' payloads are read, not verified again.
        const payload = JSON.parse(Buffer.from(record.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss: string } & Record<string, unknown>
        return { id, record: { issuer: payload.iss, record: payload } }
      })
      await rm(out, { recursive: true, force: true })
      const proposer = new Map(blocks.filter(b => b.record.record.type === 'proposal').map(b => [b.id, b.record.issuer]))
      for (const b of blocks) {
        const r = b.record.record
        if (r.type === 'charter') terms = AcceptanceTerms.parse(r.acceptance)
        if (r.type !== 'vote') continue
        const by = proposer.get(r.proposal as string) ?? ''
        votes.push({ setting, seed, round: r.round as number, proposal: r.proposal as string, proposer: names.get(by) ?? by, voter: names.get(b.record.issuer) ?? b.record.issuer, proposerHostile: hostile.has(by), voterHostile: hostile.has(b.record.issuer), accept: r.accept as boolean, measurement: r.measurement as CastVote['measurement'] })
      }
      const of = (isHostile: boolean): typeof report.agents => report.agents.filter(a => hostile.has(a.did) === isHostile)
      const run = { setting, seed, metric: report.rounds.at(-1)?.metric.value ?? Number.NaN, hostileMerged: of(true).reduce((n, a) => n + a.accepted, 0), honestRejected: of(false).reduce((n, a) => n + a.rejected, 0) }
      runs.push(run)
      process.stderr.write(`${values.task} ${setting} seed ${seed}: dev ${(100 * run.metric).toFixed(2)} · hostile merged ${run.hostileMerged} · honest rejected ${run.honestRejected}\n`)
    }
  }
  if (terms === undefined) throw new Error('no charter in the runs')
  return { terms, votes, runs }
}

async function load (): Promise<Collected> {
  const files = await Promise.all(values.votes.split(',').map(async f => JSON.parse(await readFile(f, 'utf8')) as Collected))
  const [first] = files
  if (first === undefined) throw new Error('--votes names no file')
  if (files.some(f => JSON.stringify(f.terms) !== JSON.stringify(first.terms))) throw new Error('the vote files were collected under different terms')
  return { terms: first.terms, votes: files.flatMap(f => f.votes), runs: files.flatMap(f => f.runs) }
}

const collected: Collected = values.collect ? await collect() : await load()
if (values.collect) await writeFile(values.votes, JSON.stringify(collected))
/** The terms each bar is re-decided under: the live runs' terms, with what the command sets explicitly in their place. */
const decidedTerms: AcceptanceTerms = AcceptanceTerms.parse({
  ...collected.terms,
  ...(values['class-ratio'] === undefined ? {} : { classRatio: Number(values['class-ratio']) }),
  ...(values['min-gain'] === undefined ? {} : { minGain: Number(values['min-gain']) }),
  ...(values['probation-gain'] === undefined ? {} : { probationGain: Number(values['probation-gain']) }),
  ...(values.strikes === undefined || Number(values.strikes) === 1 ? {} : { strikes: Number(values.strikes) }),
  ...(values['exclude-rejected'] ? { excludeRejected: true } : {}),
  ...(values['gaining-vouchers'] ? { gainingVouchers: true } : {}),
  ...(values['bad-on-probation'] ? { badOnProbation: true } : {}),
  ...(values['probation-once'] ? { probationOnce: true } : {}),
  ...(values['min-sharpening'] === undefined ? {} : { minSharpening: Number(values['min-sharpening']) }),
  ...(values['min-movement'] === undefined ? {} : { minMovement: Number(values['min-movement']) }),
  ...yardstick
})

/** What honest voters measured, for the selection table: per vote, the worst class's fall, what the helped classes gain over what the hurt ones lose, and the improve and marginal tests' shares. */
const worstFall = (m: Measured): number => (m.classes ?? []).reduce((min, c) => Math.min(min, c.combined - c.without), 0)
const ratio = (m: Measured): number => {
  const { helps, hurts } = classEffects(m.classes ?? [])
  return hurts === 0 ? Number.POSITIVE_INFINITY : helps / hurts
}
/** The update's gain as a share of what the voter's own update gains (the improve test's quantity). */
const gainShare = (m: Measured): number => m.reference === undefined ? Number.NaN : (m.after - m.before) / (m.reference - m.before)
/** The update's marginal effect as a share of what the whole combination gains (the marginal test's quantity). */
const marginalShare = (m: Measured): number => m.combined === undefined || m.without === undefined ? Number.NaN : (m.combined - m.without) / Math.max(0, m.combined - m.before)
/** How much the update lowers the mean entropy of the voter's predictions (sharpens them), absolute and as a share of what the voter's own update lowers it. */
const sharpening = (m: Measured): number => m.entropy === undefined ? Number.NaN : m.entropy.before - m.entropy.after
const ownSharpening = (m: Measured): number => m.entropy?.reference === undefined ? Number.NaN : m.entropy.before - m.entropy.reference
const sharpeningShare = (m: Measured): number => sharpening(m) / ownSharpening(m)
/** How much the update sharpens the voter's predictions as a share of what the round's median update does (the round yardstick's quantity). */
const roundSharpeningShare = (m: Measured): number => m.entropy?.round === undefined ? Number.NaN : sharpening(m) / (roundSharpening(m.entropy) ?? Number.NaN)
/** How far the update moves the voter's predictions as a share of the round's median movement (the minMovement test's quantity). */
const movementShare = (m: Measured): number => m.movement === undefined ? Number.NaN : m.movement.after / (roundMovement(m.movement) ?? Number.NaN)
/** Each proposal's standing as the collected terms decide the rounds before it. */
const liveStanding = new Map(collected.runs.flatMap(run => redecide(collected.terms, collected.votes.filter(v => v.setting === run.setting && v.seed === run.seed)).map(p => [`${run.setting}/${run.seed}/${p.proposal}`, p.standing] as const)))
const measured = collected.votes.filter((v): v is CastVote & { measurement: Measured } => !('unusable' in v.measurement) && !v.voterHostile)
const groupOf = (v: CastVote): string => `${v.setting} · ${v.proposerHostile ? 'hostile' : 'honest'} updates · round ${v.round === 1 ? '1' : '2-3'}`
for (const group of [...new Set(measured.map(groupOf))].sort()) {
  const votes = measured.filter(v => groupOf(v) === group)
  const spread = (xs: number[]): string => {
    const sorted = xs.filter(x => !Number.isNaN(x)).sort((a, b) => a - b)
    const q = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN).toFixed(3)
    return `min ${q(0)} · 10% ${q(0.1)} · median ${q(0.5)} · 90% ${q(0.9)} · max ${q(1)}`
  }
  const geometry = (pick: (g: NonNullable<Measured['geometry']>) => number | undefined): string => spread(votes.map(v => v.measurement.geometry === undefined ? Number.NaN : pick(v.measurement.geometry) ?? Number.NaN))
  // Why the collected terms reject (the proposer's standing taken as the live run had it: re-derived with the terms).
  const why = votes.map(v => ruling(collected.terms, v.measurement, liveStanding.get(`${v.setting}/${v.seed}/${v.proposal}`)))
  console.log(`${group}: ${votes.length} votes; at the collected terms ${why.filter(r => !r.accept).length} reject, ${why.filter(r => r.geometry.includes('fails')).length} of them by geometry (${[...new Set(why.map(r => r.geometry.split('fails: ')[1]?.split(':')[0]).filter(x => x !== undefined))].join('; ')})\n  norm ratio ${geometry(g => g.normRatio)}\n  cosine with the voter's ${geometry(g => g.cosine)}\n  cosine with merged ${geometry(g => g.historyCosine)}\n  worst class's fall ${spread(votes.map(v => worstFall(v.measurement)))}\n  helps / hurts ${spread(votes.map(v => ratio(v.measurement)))}\n  gain / own update's gain ${spread(votes.map(v => gainShare(v.measurement)))}\n  marginal / combination's gain ${spread(votes.map(v => marginalShare(v.measurement)))}\n  own update's gain ${spread(votes.map(v => (v.measurement.reference ?? Number.NaN) - v.measurement.before))}\n  sharpening ${spread(votes.map(v => sharpening(v.measurement)))}\n  own update's sharpening ${spread(votes.map(v => ownSharpening(v.measurement)))}\n  sharpening / own update's ${spread(votes.map(v => sharpeningShare(v.measurement)))}\n  sharpening / the round's median ${spread(votes.map(v => roundSharpeningShare(v.measurement)))}\n  movement / the round's median ${spread(votes.map(v => movementShare(v.measurement)))}`)
}

/** Each run's proposals re-decided under `terms`, round by round: standing and counted voters from the rounds before. */
interface Redecided { proposal: string, round: number, standing: Standing, hostile: boolean, merged: boolean, honestVotes: boolean[] }

function redecide (terms: AcceptanceTerms, votes: CastVote[]): Redecided[] {
  const byRound = new Map<number, Map<string, CastVote[]>>()
  for (const v of votes) {
    const round = byRound.get(v.round) ?? new Map<string, CastVote[]>()
    round.set(v.proposal, [...(round.get(v.proposal) ?? []), v])
    byRound.set(v.round, round)
  }
  const decided = new Map<string, { merged: number, rejected: number }>()
  const out: Redecided[] = []
  for (const round of [...byRound.keys()].sort((a, b) => a - b)) {
    const outcomes: Array<{ proposer: string, merged: boolean }> = []
    for (const ballots of byRound.get(round)?.values() ?? []) {
      const [first] = ballots
      if (first === undefined) continue
      const record = decided.get(first.proposer) ?? { merged: 0, rejected: 0 }
      const standing = standingOf(record, terms)
      const excluded = (voter: string): boolean => terms.excludeRejected === true && (decided.get(voter)?.rejected ?? 0) > 0
      // A colluder's forged vote stands as cast; every other vote is what the rule decides from its numbers.
      const decide = (v: CastVote): boolean => 'unusable' in v.measurement ? false : (v.voterHostile && v.setting.startsWith('collude')) ? v.accept : ruling(terms, v.measurement, standing).accept
      const counted = ballots.filter(v => !excluded(v.voter))
      const judges = AGENTS - 1 - [...decided].filter(([m, r]) => m !== first.proposer && terms.excludeRejected === true && r.rejected > 0).length
      const required = terms.excludeRejected === true ? requiredAmongCounted(QUORUM, judges) : requiredOf(QUORUM, AGENTS - 1)
      const merged = counted.filter(decide).length >= required
      outcomes.push({ proposer: first.proposer, merged })
      out.push({ proposal: first.proposal, round, standing, hostile: first.proposerHostile, merged, honestVotes: ballots.filter(v => !v.voterHostile).map(decide) })
    }
    for (const { proposer, merged } of outcomes) {
      const record = decided.get(proposer) ?? { merged: 0, rejected: 0 }
      decided.set(proposer, merged ? { ...record, merged: record.merged + 1 } : { ...record, rejected: record.rejected + 1 })
    }
  }
  return out
}

for (const value of values.bars.split(',').map(Number)) {
  const terms = withBar(decidedTerms, value)
  const counts = new Map<string, { hostileMerged: number, hostile: number, honestRejected: number, honest: number, honestVotesRejecting: number, honestVotes: number, where: string[] }>()
  for (const run of collected.runs) {
    const c = counts.get(run.setting) ?? { hostileMerged: 0, hostile: 0, honestRejected: 0, honest: 0, honestVotesRejecting: 0, honestVotes: 0, where: [] }
    for (const p of redecide(terms, collected.votes.filter(v => v.setting === run.setting && v.seed === run.seed))) {
      // Where the bar lets a hostile update through, or keeps an honest one out: seed, round, the proposer's standing.
      if (p.hostile === p.merged) c.where.push(`${p.hostile ? 'hostile merged' : 'honest rejected'} seed ${run.seed} round ${p.round} (${p.standing})`)
      if (p.hostile) { c.hostile++; if (p.merged) c.hostileMerged++ } else {
        c.honest++
        if (!p.merged) c.honestRejected++
        c.honestVotes += p.honestVotes.length
        c.honestVotesRejecting += p.honestVotes.filter(a => !a).length
      }
    }
    counts.set(run.setting, c)
  }
  console.log(`${bar} ${value}: ${[...counts].map(([s, c]) => `${s}: hostile merged ${c.hostileMerged}/${c.hostile}, honest rejected ${c.honestRejected}/${c.honest}, honest votes rejecting ${c.honestVotesRejecting}/${c.honestVotes}`).join(' | ')}`)
  for (const [s, c] of counts) if (c.where.length > 0) console.log(`  ${s}: ${c.where.join('; ')}`)
}
