import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { runBaseline } from '../../src/federation/baselines.ts'
import type { RunConfigInput } from '../../src/federation/config.ts'
import { runFederation } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

/**
 * Two of five members attack together. A vote that keeps exactly their updates out ends at
 * the model the three honest members reach alone (FedAvg of their updates): same bytes.
 */
describe.each([
  { attack: 'collude', why: 'sign-flipped updates, colluding votes: accept each other, reject the honest' },
  { attack: 'scale', why: 'updates ×10' },
  { attack: 'inflate-samples', why: 'honest updates claiming 10⁶ times their samples' }
])('two hostile members: $attack ($why)', ({ attack }) => {
  it('merges no hostile update, rejects no honest one, and ends at the honest members\' model', async () => {
    const input: RunConfigInput = { agents: 5, rounds: 2, quorum: { kind: 'fraction', fraction: 0.5 } }
    const config = smallConfig({ ...input, attacks: [4, 5].map(agent => ({ kind: attack, agent })) } as RunConfigInput)
    const out = await tempDir()
    try {
      const report = await runFederation(config, { out, force: true })
      const hostile = report.agents.filter(a => a.name === 'agent-4' || a.name === 'agent-5')
      const honest = report.agents.filter(a => !hostile.includes(a))
      expect(hostile.map(a => a.accepted)).toEqual([0, 0])
      expect(honest.map(a => [a.accepted, a.rejected])).toEqual([[2, 0], [2, 0], [2, 0]])
      const absent = await runBaseline('fedavg', smallConfig(input), { absent: [4, 5] })
      expect(report.modelHash).toBe(absent.modelHash)
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  }, 240_000)
})
