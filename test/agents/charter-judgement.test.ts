import { afterEach, describe, expect, it } from 'vitest'
import { ParticipantAgent } from '../../agents/index.ts'
import type { Vote } from '../../src/core/records.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { JsonToolChatModel } from '../../src/llm/json-tools.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'
import { eventProposal, scripted } from './scripted.ts'

/** A model that judges against the rule: it rejects what passes and accepts what fails. */
function contrarian (): ReturnType<typeof scripted> & { systems: string[] } {
  const systems: string[] = []
  const model = scripted(p => {
    systems.push(p.system)
    const proposal = eventProposal(p.user)
    if (proposal === undefined) return JSON.stringify({ reply: 'not proposing' })
    if (!p.user.includes('RESULT of evaluate')) return JSON.stringify({ tool: 'evaluate', args: { proposal } })
    return JSON.stringify({ tool: 'vote', args: { proposal, accept: !/"passesRule":true/.test(p.user), rationale: 'my own judgement' } })
  })
  return Object.assign(model, { name: 'ollama:contrarian', systems })
}

describe('an agent judges by the charter\'s judgement, not its own config\'s', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('under a rule charter a member whose model disagrees with the rule is told to follow it and votes by it: its votes are counted, none abstains', async () => {
    const model = contrarian()
    // The charter says rule; agent-2's model judges otherwise (before, a member's own config could say model and prompt it to).
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-2' ? { model: new JsonToolChatModel(model) } : {})
    })
    await sim.charter()
    expect(sim.participants[0]!.state.charter?.record.acceptance?.judgement).toBeUndefined() // rule
    await sim.round(1)
    const agent = sim.drivers[1] as ParticipantAgent
    const mine = [...agent.participant.state.proposals.values()].flatMap(e => e.signed.issuer === agent.participant.did ? [] : [e.votes.get(agent.participant.did)?.signed.record as Vote | undefined])
    expect(mine).toHaveLength(2)
    for (const vote of mine) expect(vote).toMatchObject({ decidedBy: 'policy', judgement: 'rule' })
    expect(model.systems.length).toBeGreaterThan(0)
    for (const system of model.systems) expect(system).toMatch(/Your accept must be what the federation's acceptance rule says/)
  }, 60_000)
})
