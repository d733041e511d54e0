/**
 * `node bench/classwise-selection.ts [--seeds 11,12,13] [--settings clean,label-flip:1,label-flip:2] [--class-ratio K] [--votes FILE] [--bars 1,1.4,1.8] [--no-collect]`:
 * chooses the classwise rule's `classRatio` on the DEV split only (the test split is never read).
 * Runs classify as the robustness bench does (5 members, quorum 2 of 4, 3 rounds, the last h members
 * hostile) under `acceptance: classwise` with the given ratio (default 1: the runs decide as the
 * marginal rule does, and sign each class's scores), keeps every vote with the measurement it signs,
 * and writes them to --votes (--no-collect reads them from there instead). Then prints, per setting,
 * what honest voters measured class by class, and re-decides each vote offline at each candidate
 * ratio (an honest voter, or a label-flipper voting by the rule on its own clean validation data,
 * decides again from its signed numbers; a colluder's forged vote stands): what a 2-of-4 quorum merges.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Measured } from '../src/federation/acceptance-terms.ts'
import { classEffects } from '../src/federation/acceptance.ts'
import { AcceptanceTerms, ruling } from '../src/federation/acceptance-terms.ts'
import { memberName, parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { TABLE1_BASE } from './table1-setting.ts'

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '11,12,13' },
    settings: { type: 'string', default: 'clean,label-flip:1,label-flip:2' },
    'class-ratio': { type: 'string', default: '1' },
    votes: { type: 'string', default: '/tmp/classwise-votes.json' },
    bars: { type: 'string', default: '1,1.2,1.4,1.5,1.6,1.8,2,2.5' },
    collect: { type: 'boolean', default: true }
  },
  allowNegative: true
})
const AGENTS = 5
const QUORUM = 2

interface CastVote { setting: string, seed: number, round: number, proposal: string, proposerHostile: boolean, voterHostile: boolean, accept: boolean, measurement: Measured | { unusable: string } }
interface Collected { terms: AcceptanceTerms, votes: CastVote[], runs: Array<{ setting: string, seed: number, metric: number, hostileMerged: number, honestRejected: number }> }

async function collect (): Promise<Collected> {
  const votes: CastVote[] = []
  const runs: Collected['runs'] = []
  let terms: AcceptanceTerms | undefined
  for (const seed of values.seeds.split(',').map(Number)) {
    for (const setting of values.settings.split(',')) {
      const [attack, h = '0'] = setting.split(':')
      const bad = Array.from({ length: Number(h) }, (_, i) => AGENTS - i)
      const config = parseRunConfig({
        ...TABLE1_BASE, agents: AGENTS, quorum: { kind: 'fraction', fraction: 0.5 }, rounds: 3, seed, task: { kind: 'classify' }, evalSplit: 'dev', momentum: 0.5,
        acceptance: 'classwise', classRatio: Number(values['class-ratio']),
        attacks: attack === 'clean' ? [] : bad.map(agent => ({ kind: attack, agent }))
      } as unknown as RunConfigInput)
      const out = await mkdtemp(join(tmpdir(), 'conclave-classwise-'))
      const report = await runFederation(config, { out, force: true })
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
        votes.push({ setting, seed, round: r.round as number, proposal: r.proposal as string, proposerHostile: hostile.has(proposer.get(r.proposal as string) ?? ''), voterHostile: hostile.has(b.record.issuer), accept: r.accept as boolean, measurement: r.measurement as CastVote['measurement'] })
      }
      const of = (isHostile: boolean): typeof report.agents => report.agents.filter(a => hostile.has(a.did) === isHostile)
      const run = { setting, seed, metric: report.rounds.at(-1)?.metric.value ?? Number.NaN, hostileMerged: of(true).reduce((n, a) => n + a.accepted, 0), honestRejected: of(false).reduce((n, a) => n + a.rejected, 0) }
      runs.push(run)
      process.stderr.write(`${setting} seed ${seed}: dev ${(100 * run.metric).toFixed(2)} · hostile merged ${run.hostileMerged} · honest rejected ${run.honestRejected}\n`)
    }
  }
  if (terms === undefined) throw new Error('no charter in the runs')
  return { terms, votes, runs }
}

const collected: Collected = values.collect ? await collect() : JSON.parse(await readFile(values.votes, 'utf8')) as Collected
if (values.collect) await writeFile(values.votes, JSON.stringify(collected))

/** What honest voters measured class by class, for the selection table: per vote, the worst class's fall and what the helped classes gain over what the hurt ones lose. */
const worstFall = (m: Measured): number => (m.classes ?? []).reduce((min, c) => Math.min(min, c.combined - c.without), 0)
const ratio = (m: Measured): number => {
  const { helps, hurts } = classEffects(m.classes ?? [])
  return hurts === 0 ? Number.POSITIVE_INFINITY : helps / hurts
}
const measured = collected.votes.filter((v): v is CastVote & { measurement: Measured } => !('unusable' in v.measurement) && !v.voterHostile)
for (const group of [...new Set(measured.map(v => `${v.setting} · ${v.proposerHostile ? 'hostile' : 'honest'} updates · round ${v.round === 1 ? '1' : '2-3'}`))].sort()) {
  const votes = measured.filter(v => `${v.setting} · ${v.proposerHostile ? 'hostile' : 'honest'} updates · round ${v.round === 1 ? '1' : '2-3'}` === group)
  const spread = (xs: number[]): string => {
    const sorted = xs.sort((a, b) => a - b)
    const q = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN).toFixed(2)
    return `min ${q(0)} · 10% ${q(0.1)} · median ${q(0.5)} · 90% ${q(0.9)} · max ${q(1)}`
  }
  console.log(`${group}: ${votes.length} votes; worst class's fall ${spread(votes.map(v => worstFall(v.measurement)))}; helps / hurts ${spread(votes.map(v => ratio(v.measurement)))}`)
}

for (const bar of values.bars.split(',').map(Number)) {
  const terms = { ...collected.terms, classRatio: bar }
  const counts = new Map<string, { hostileMerged: number, hostile: number, honestRejected: number, honest: number, honestVotesRejecting: number, honestVotes: number }>()
  const proposals = new Map<string, CastVote[]>()
  for (const v of collected.votes) proposals.set(`${v.setting}/${v.seed}/${v.proposal}`, [...(proposals.get(`${v.setting}/${v.seed}/${v.proposal}`) ?? []), v])
  for (const votes of proposals.values()) {
    const [first] = votes
    if (first === undefined) continue
    // A colluder's forged vote stands as cast; every other vote is what the rule decides from its numbers.
    const decide = (v: CastVote): boolean => 'unusable' in v.measurement ? false : (v.voterHostile && v.setting.startsWith('collude')) ? v.accept : ruling(terms, v.measurement).accept
    const c = counts.get(first.setting) ?? { hostileMerged: 0, hostile: 0, honestRejected: 0, honest: 0, honestVotesRejecting: 0, honestVotes: 0 }
    const merged = votes.filter(decide).length >= QUORUM
    if (first.proposerHostile) { c.hostile++; if (merged) c.hostileMerged++ } else { c.honest++; if (!merged) c.honestRejected++ }
    if (!first.proposerHostile) for (const v of votes.filter(w => !w.voterHostile)) { c.honestVotes++; if (!decide(v)) c.honestVotesRejecting++ }
    counts.set(first.setting, c)
  }
  console.log(`classRatio ${bar}: ${[...counts].map(([s, c]) => `${s}: hostile merged ${c.hostileMerged}/${c.hostile}, honest rejected ${c.honestRejected}/${c.honest}, honest votes rejecting ${c.honestVotesRejecting}/${c.honestVotes}`).join(' | ')}`)
}
