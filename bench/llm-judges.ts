/**
 * `node bench/llm-judges.ts --llm gguf:<file> [--judgement rule|model|guarded] [--hostile]
 * [--agents 3] [--rounds 2] [--seed 3]`: a federation whose agents run on a real model,
 * measured: how many model steps were valid as made, how many evaluations and votes the
 * model (not the policy) decided, how often its votes agreed with the acceptance rule, what
 * hostile updates were merged and honest ones rejected, and the final accuracy.
 * `--hostile` makes the last member flip its update's sign and the one before it add noise.
 * Prints one JSON line; asserts nothing (docs/results/llm-judges.md reads these).
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { agentDriver, type ParticipantAgent } from '../agents/index.ts'
import { consoleLogger } from '../src/core/logger.ts'
import { POLICY } from '../src/core/records.ts'
import { audit } from '../src/federation/audit.ts'
import { parseRunConfig } from '../src/federation/config.ts'
import { Simulation } from '../src/federation/simulation.ts'
import { unloadGguf } from '../src/llm/gguf.ts'
import { Judgement } from '../src/core/terms.ts'

const { values } = parseArgs({
  options: {
    llm: { type: 'string' },
    judgement: { type: 'string', default: 'rule' },
    hostile: { type: 'boolean', default: false },
    agents: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    seed: { type: 'string', default: '3' }
  }
})
if (values.llm === undefined) throw new Error('--llm gguf:<file> or ollama:<model> is required')
const judgement = Judgement.parse(values.judgement)
const [agents, rounds, seed] = [Number(values.agents), Number(values.rounds), Number(values.seed)]
const attacks = values.hostile ? [{ kind: 'sign-flip', agent: agents, scale: 5 }, { kind: 'random-noise', agent: agents - 1, std: 0.05 }] : []
const config = parseRunConfig({
  agents, rounds, seed, quorum: 'majority', attacks,
  ledger: { kind: 'tangle', difficulty: 4 },
  task: { kind: 'classify', trainLimit: 900, testLimit: 400 },
  agent: { llm: values.llm, judgement }
})
const sim = await Simulation.create(config, { dir: await mkdtemp(join(tmpdir(), 'conclave-llm-judges-')), driver: agentDriver({ llm: config.agent.llm, seed, logger: consoleLogger }) })
// What the rule said of each (voter, proposal), from each voter's own evaluation.
const passes = new Map<string, boolean>()
sim.participants.forEach(p => p.on('conclave:evaluated', e => { passes.set(`${p.did} ${e.proposal}`, e.passes) }))
const started = performance.now()
try {
  await sim.charter()
  let accuracy = 0
  for (let round = 1; round <= rounds; round++) accuracy = (await sim.round(round)).metric.value
  const activity = sim.drivers.map(d => (d as ParticipantAgent).activity())
  const sum = (f: (a: typeof activity[number]) => number): number => activity.reduce((s, a) => s + f(a), 0)
  const judged = (a: typeof activity[number]): { model: number, policy: number } => ({
    model: (a.decisions.evaluate?.model ?? 0) + (a.decisions.vote?.model ?? 0),
    policy: (a.decisions.evaluate?.policy ?? 0) + (a.decisions.vote?.policy ?? 0)
  })
  const hostile = new Set(attacks.map(a => sim.participants[a.agent - 1]?.did))
  const entries = [...(sim.participants[0]?.state.proposals.values() ?? [])]
  const votes = entries.flatMap(e => [...e.votes.entries()].map(([voter, v]) => ({ voter, proposal: e.block, vote: v.signed.record })))
  const agreeing = votes.filter(v => passes.get(`${v.voter} ${v.proposal}`) === v.vote.accept)
  const byModel = votes.filter(v => v.vote.decidedBy !== undefined && v.vote.decidedBy !== POLICY)
  const result = {
    llm: values.llm.replace(/^gguf:.*\//, 'gguf:'),
    judgement, hostile: values.hostile, agents, rounds, seed,
    steps: sum(a => a.llm.calls),
    validAsMade: sum(a => a.llm.valid) / Math.max(1, sum(a => a.llm.calls)),
    fallbacks: sum(a => a.llm.fallback),
    judgedByModel: sum(a => judged(a).model) / Math.max(1, sum(a => judged(a).model + judged(a).policy)),
    votes: votes.length,
    votesByModel: byModel.length,
    agreementWithRule: agreeing.length / Math.max(1, votes.length),
    modelVotesAgainstRule: byModel.filter(v => passes.get(`${v.voter} ${v.proposal}`) !== v.vote.accept).length,
    hostileMerged: entries.filter(e => hostile.has(e.signed.issuer) && e.decision?.record.accepted === true).length,
    hostileProposed: entries.filter(e => hostile.has(e.signed.issuer)).length,
    honestRejected: entries.filter(e => !hostile.has(e.signed.issuer) && e.decision?.record.accepted === false).length,
    honestProposed: entries.filter(e => !hostile.has(e.signed.issuer)).length,
    accuracy,
    auditOk: (await audit(sim.ledger, sim.store)).ok,
    wallSeconds: Math.round((performance.now() - started) / 1000)
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
} finally {
  await sim.close()
  await unloadGguf()
}
