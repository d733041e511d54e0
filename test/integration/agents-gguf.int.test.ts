import { execFile } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { agentDriver, type ParticipantAgent } from '../../agents/index.ts'
import { audit } from '../../src/federation/audit.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { unloadGguf } from '../../src/llm/gguf.ts'

/**
 * A real small model behind every agent: Gemma 3 270M (Q4_K_M GGUF from PyPI, installed by
 * scripts/models/gemma.sh) run in-process by node-llama-cpp. The model must make its own
 * tool calls; what it gets wrong is retried or handed to the policy, and counted.
 */
describe('agents on a real GGUF model (Gemma 3 270M)', () => {
  afterAll(async () => { await unloadGguf() })

  it('a 3-agent federation completes 2 rounds; the report counts valid calls, retries and fallbacks; the audit passes', async () => {
    const { stdout } = await promisify(execFile)('scripts/models/gemma.sh', [], { timeout: 600_000 })
    const model = stdout.trim().split('\n').at(-1) as string
    expect(model).toMatch(/gemma-3-270m-q4_k_m\.gguf$/)

    const config = parseRunConfig({ agents: 3, rounds: 2, seed: 3, quorum: 2, ledger: { kind: 'tangle', difficulty: 4 }, task: { kind: 'classify', trainLimit: 900, testLimit: 400 }, agent: { llm: `gguf:${model}` } })
    const sim = await Simulation.create(config, { dir: await mkdtemp(join(tmpdir(), 'conclave-gguf-')), driver: agentDriver({ llm: config.agent.llm, seed: 3 }) })
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
      // the model itself, not only the policy, drove part of the protocol
      expect(activity.reduce((s, a) => s + a.llm.valid, 0)).toBeGreaterThan(0)
      process.stderr.write(`gguf agents: ${JSON.stringify(activity.map(a => a.llm))}\n`)
      expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
    } finally {
      await sim.close()
    }
  }, 900_000)
})
