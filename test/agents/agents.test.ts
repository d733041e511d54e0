import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BaseMessage, ToolMessage } from '@langchain/core/messages'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ParticipantAgent, agentDriver } from '../../agents/index.ts'
import { FileCheckpointSaver } from '../../graphs/file-checkpointer.ts'
import { BackendUnavailableError, ConclaveError } from '../../src/core/errors.ts'
import type { Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { JsonToolChatModel } from '../../src/llm/json-tools.ts'
import { defineTool, loadPluginTools, type AgentTool, type ToolDefinition } from '../../tools/index.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'
import { eventProposal, scripted } from './scripted.ts'

/** A well-behaved model's next step, read from the rendered prompt (the protocol, by hand). */
function sensible (user: string): string {
  const proposal = eventProposal(user)
  const done = (tool: string): boolean => user.includes(`RESULT of ${tool}`)
  if (proposal === undefined) {
    for (const tool of ['train', 'publish', 'anchor']) if (!done(tool)) return JSON.stringify({ tool, args: {} })
    return JSON.stringify({ reply: 'proposed' })
  }
  if (!done('evaluate')) return JSON.stringify({ tool: 'evaluate', args: { proposal } })
  if (!done('vote')) return JSON.stringify({ tool: 'vote', args: { proposal, accept: /"passesRule":true/.test(user), rationale: 'my validation data says so' } })
  return JSON.stringify({ reply: 'voted' })
}

const agentOf = (sim: Simulation, i: number): ParticipantAgent => sim.drivers[i] as ParticipantAgent

async function votesOnLedger (sim: Simulation): Promise<Array<{ issuer: string, vote: Vote }>> {
  const out: Array<{ issuer: string, vote: Vote }> = []
  for await (const block of sim.ledger.blocks()) {
    const { issuer, record } = peekRecord(block.record)
    if (record?.type === 'vote' && issuer !== null) out.push({ issuer, vote: record })
  }
  return out
}

describe('agents drive the protocol through tools', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('policy agents propose, evaluate and vote with rationales; the report counts tools and model calls; the audit passes', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 2 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    for (const round of [1, 2]) await sim.round(round)
    const votes = await votesOnLedger(sim)
    expect(votes).toHaveLength(2 * 3 * 2) // 2 rounds × 3 proposals × 2 peers
    for (const { vote } of votes) {
      expect(vote.rationale).toMatch(/validation examples: .* (accept|reject) — protocol policy/)
      expect(vote).toMatchObject({ decidedBy: 'policy', judgement: 'rule' })
    }
    for (let i = 0; i < 3; i++) {
      const { toolCalls, llm, decisions } = agentOf(sim, i).activity()
      expect(toolCalls).toEqual({ train: 2, publish: 2, anchor: 2, evaluate: 4, vote: 4 })
      const byPolicy = (n: number): { model: number, policy: number } => ({ model: 0, policy: n })
      expect(decisions).toEqual({ train: byPolicy(2), publish: byPolicy(2), anchor: byPolicy(2), evaluate: byPolicy(4), vote: byPolicy(4) })
      expect(llm.calls).toBe(llm.valid)
      expect(llm.retried + llm.fallback).toBe(0)
    }
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })

  it('an agent\'s memory keeps its last `memory` messages between turns, turn after turn, as a restarted agent reads them back', async () => {
    const dirs = new Map<string, { dir: string, did: string }>()
    sim = await Simulation.create(smallConfig({ rounds: 2 }), {
      dir: await tempDir(),
      driver: async (participant, context) => {
        dirs.set(participant.name, { dir: context.dir, did: participant.did })
        return ParticipantAgent.create(participant, context, { memory: 5 })
      }
    })
    await sim.charter()
    for (const round of [1, 2]) await sim.round(round)
    for (const { dir, did } of dirs.values()) {
      const saver = await FileCheckpointSaver.open(join(dir, 'memory.json'))
      const turns: BaseMessage[][] = []
      // Each checkpoint that starts a turn (its last message the event) holds what the turn before it kept.
      for await (const tuple of saver.list({ configurable: { thread_id: did } })) turns.push((tuple.checkpoint.channel_values.messages ?? []) as BaseMessage[])
      const last = turns[0] ?? []
      const event = last.findLastIndex(m => m.type === 'human')
      expect(event).toBe(5) // 5 messages kept from before this turn, then its event
      expect(last.slice(event).length).toBeGreaterThan(1)
      expect(last.filter(m => m.id === undefined)).toEqual([]) // each kept with the id its turn gave it, so a later turn can let it go
    }
  })

  it('with committees, an agent is woken for, evaluates and votes on only the proposals it was drawn to judge', async () => {
    sim = await Simulation.create(smallConfig({ agents: 4, committee: 2, rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    await sim.round(1)
    const state = sim.participants[0]?.state
    const proposals = [...state?.proposals.values() ?? []]
    expect(proposals).toHaveLength(4)
    const votes = await votesOnLedger(sim)
    expect(votes).toHaveLength(4 * 2)
    for (const { issuer, vote } of votes) expect(state?.judges(vote.proposal)).toContain(issuer)
    for (let i = 0; i < 4; i++) {
      const drawn = proposals.filter(p => state?.judges(p.block).includes(sim?.participants[i]?.did as string)).length
      expect(agentOf(sim, i).activity().toolCalls).toEqual({ train: 1, publish: 1, anchor: 1, ...(drawn === 0 ? {} : { evaluate: drawn, vote: drawn }) })
    }
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })

  it('runs the same federation to the same model as the autopilot', async () => {
    const byAgents = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    const byCode = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir() })
    try {
      for (const s of [byAgents, byCode]) { await s.charter(); await s.round(1) }
      expect(byAgents.participants[0]?.globalModel?.ref.sha256).toBe(byCode.participants[0]?.globalModel?.ref.sha256)
    } finally {
      await byAgents.close()
      await byCode.close()
    }
  })

  it('on a task learned from a teacher, policy agents distil first (once), then act, and reach the autopilot\'s model', async () => {
    const config = smallConfig({ rounds: 1, task: { kind: 'qa', trainLimit: 300, testLimit: 40, features: 4096, hidden: 32, maxWords: 300 } })
    const byAgents = await Simulation.create(config, { dir: await tempDir(), driver: agentDriver() })
    const byCode = await Simulation.create(config, { dir: await tempDir() })
    try {
      for (const s of [byAgents, byCode]) { await s.charter(); await s.round(1) }
      for (let i = 0; i < 3; i++) {
        expect(agentOf(byAgents, i).activity().toolCalls).toEqual({ distill: 1, train: 1, publish: 1, anchor: 1, evaluate: 2, vote: 2 })
        expect(byAgents.participants[i]?.undistilled).toBe(0)
      }
      expect(byAgents.participants[0]?.globalModel?.ref.sha256).toBe(byCode.participants[0]?.globalModel?.ref.sha256)
    } finally {
      await byAgents.close()
      await byCode.close()
    }
  })

  it('a model decides how much to ask its teacher; training on unanswered questions is refused and the model is told why', async () => {
    const count = (user: string, tool: string): number => user.split(`RESULT of ${tool}`).length - 1
    // Asks for three answers, tries to train, reads the refusal, asks for the rest, proposes.
    const frugal = scripted(p => {
      if (eventProposal(p.user) !== undefined) return sensible(p.user)
      const [distills, trains] = [count(p.user, 'distill'), count(p.user, 'train')]
      if (distills === 0) return JSON.stringify({ tool: 'distill', args: { limit: 3 } })
      if (trains === 0) return JSON.stringify({ tool: 'train', args: {} })
      if (distills === 1) return JSON.stringify({ tool: 'distill', args: {} })
      if (trains === 1) return JSON.stringify({ tool: 'train', args: {} })
      for (const tool of ['publish', 'anchor']) if (count(p.user, tool) === 0) return JSON.stringify({ tool, args: {} })
      return JSON.stringify({ reply: 'proposed' })
    })
    sim = await Simulation.create(smallConfig({ rounds: 1, task: { kind: 'qa', trainLimit: 300, testLimit: 40, features: 4096, hidden: 32, maxWords: 300 } }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-1' ? { model: new JsonToolChatModel(frugal) } : {})
    })
    await sim.charter()
    await sim.round(1)
    const afterFirstDistill = frugal.prompts.find(u => count(u, 'distill') === 1 && count(u, 'train') === 0)
    expect(afterFirstDistill).toMatch(/RESULT of distill: \{"asked":3,"cached":0,"failed":0,"tokens":\d+,"pending":\d+,"exhausted":false,"undistilled":\d+/)
    expect(frugal.prompts.some(u => /RESULT of train: .*none of my \d+ training questions has a teacher's answer: distil first/.test(u))).toBe(true)
    expect(agentOf(sim, 0).activity().toolCalls).toMatchObject({ distill: 2, train: 2, publish: 1, anchor: 1 })
    expect(sim.participants[0]?.undistilled).toBe(0)
    expect(sim.participants[0]?.state.rounds.get(1)?.proposals).toHaveLength(3)
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })

  it('builds each step\'s schema from the agent\'s state: only legal tools, real ids, the accept the rule leaves, no ending a turn that owes a vote', async () => {
    const model = scripted(p => sensible(p.user))
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-2' ? { model: new JsonToolChatModel(model) } : {})
    })
    await sim.charter()
    await sim.round(1)
    type Branch = { properties: { tool?: { const: string }, args?: { properties?: Record<string, { const?: unknown, enum?: unknown[] }>, oneOf?: unknown[] } }, required: string[] }
    const steps = model.schemas.map((schema, i) => ({ user: model.prompts[i] as string, branches: (schema as { oneOf: Branch[] }).oneOf }))
    const tools = (b: Branch[]): Array<string | undefined> => b.map(x => x.properties.tool?.const ?? (x.required.includes('reply') ? 'reply' : undefined))
    // round open: train only until trained, then publish, then anchor; never evaluate or vote
    const opening = steps.filter(s => eventProposal(s.user) === undefined).map(s => tools(s.branches))
    expect(opening.map(t => t.filter(n => ['train', 'publish', 'anchor', 'evaluate', 'vote'].includes(n as string)))).toEqual([['train'], ['publish'], ['anchor'], []])
    for (const s of steps.filter(s => eventProposal(s.user) !== undefined)) {
      const proposal = eventProposal(s.user) as string
      const offered = tools(s.branches)
      const args = (name: string): Branch['properties']['args'] => s.branches.find(b => b.properties.tool?.const === name)?.properties.args
      if (!s.user.includes('RESULT of evaluate')) {
        expect(offered).not.toContain('vote')
        expect(offered).not.toContain('reply') // a vote is owed
        expect(args('evaluate')?.properties?.proposal?.enum).toEqual([proposal])
      } else if (!s.user.includes('RESULT of vote')) {
        expect(offered).not.toContain('evaluate')
        expect(args('vote')?.properties?.proposal?.const).toBe(proposal)
        expect(args('vote')?.properties?.accept?.const).toBe(/"passesRule":true/.test(s.user)) // rule judgement: the rule's accept only
      } else {
        expect(offered).toEqual(expect.arrayContaining(['reply']))
        expect(offered).not.toContain('vote')
      }
    }
    expect(agentOf(sim, 1).activity().llm).toMatchObject({ retried: 0, fallback: 0 })
  })

  it('offers only what is legal now: a vote before the evaluation never runs, the model hears why, and the policy takes that step', async () => {
    // A careless model: votes at once, whatever it is told.
    const told: string[] = []
    const model = scripted(p => {
      const proposal = eventProposal(p.user)
      const retry = /Your last answer was invalid: ([^\n]*)/.exec(p.system)?.[1]
      if (retry !== undefined) told.push(retry)
      if (proposal === undefined) return JSON.stringify({ reply: 'not proposing' })
      if (!p.user.includes('RESULT of vote')) return JSON.stringify({ tool: 'vote', args: { proposal, accept: /"passesRule":true/.test(p.user), rationale: 'looks fine' } })
      return JSON.stringify({ reply: 'voted' })
    })
    const dir = await tempDir()
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir,
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-2' ? { model: new JsonToolChatModel(model) } : {})
    })
    await sim.charter()
    await sim.round(1)
    expect(told.length).toBeGreaterThan(0)
    for (const line of told) expect(line).toMatch(/^vote is not a tool you can call now; the tools are evaluate, /)
    expect(model.prompts.some(u => /NoEvaluationError/.test(u))).toBe(false) // the protocol never had to refuse it
    const agent2 = agentOf(sim, 1).activity()
    expect(agent2.decisions).toMatchObject({ evaluate: { model: 0, policy: 2 }, vote: { model: 2, policy: 0 } })
    const votes = (await votesOnLedger(sim)).filter(v => v.issuer === sim?.participants[1]?.did)
    expect(votes.map(v => v.vote.decidedBy)).toEqual(['scripted', 'scripted'])
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })

  it('validates every call: a malformed one is retried once with the error, twice malformed falls back to the policy, and both are counted', async () => {
    // agent-2's model gets it right only when told what was wrong; agent-3's never does.
    const learner = scripted(p => p.system.includes('Your last answer was invalid') ? sensible(p.user) : JSON.stringify({ tool: 'approve_everything', args: {} }))
    const hopeless = scripted((_p, n) => n % 2 === 1 ? 'vote yes please' : JSON.stringify({ tool: 'vote', args: { proposal: 'not a block id!' } }))
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context,
        participant.name === 'agent-2' ? { model: new JsonToolChatModel(learner) } : participant.name === 'agent-3' ? { model: new JsonToolChatModel(hopeless) } : {})
    })
    await sim.charter()
    await sim.round(1)
    const [, learned, gaveUp] = [0, 1, 2].map(i => agentOf(sim as Simulation, i).activity())
    expect(learned?.llm).toEqual({ calls: learned?.llm.calls, valid: 0, retried: learned?.llm.calls, fallback: 0 })
    expect(learner.prompts.some(u => u.includes('approve_everything'))).toBe(false) // the bad call never ran
    expect(gaveUp?.llm).toEqual({ calls: gaveUp?.llm.calls, valid: 0, retried: gaveUp?.llm.calls, fallback: gaveUp?.llm.calls })
    for (const a of [learned, gaveUp]) {
      expect(a?.llm.calls).toBeGreaterThanOrEqual(9) // 4 steps to propose, 3 per peer proposal judged
      // every turn still got done: by the model after its retry, or by the policy
      expect(a?.toolCalls).toEqual({ train: 1, publish: 1, anchor: 1, evaluate: 2, vote: 2 })
    }
    // who decided is on the record: the model's own spec, or the policy that took its steps
    expect(learned?.decisions).toEqual({ train: { model: 1, policy: 0 }, publish: { model: 1, policy: 0 }, anchor: { model: 1, policy: 0 }, evaluate: { model: 2, policy: 0 }, vote: { model: 2, policy: 0 } })
    expect(gaveUp?.decisions.vote).toEqual({ model: 0, policy: 2 })
    const votes = await votesOnLedger(sim)
    const deciders = (i: number): Array<string | undefined> => votes.filter(v => v.issuer === sim?.participants[i]?.did).map(v => v.vote.decidedBy)
    expect([deciders(1), deciders(2)]).toEqual([['scripted', 'scripted'], ['policy', 'policy']])
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })

  it('a retry leaves out the tool of the invalid call: a model that repeats a call its grammar allows but its schema refuses (Gemma 3 270M: read_ledger last -1) still votes itself', async () => {
    // Before voting, this model reaches for read_ledger with a count below its range whenever it is offered; told why, it answers the same.
    const stubborn = scripted((p, n) => {
      const offered = ((stubborn.schemas[n - 1] as { oneOf: Array<{ properties: { tool?: { const: string } } }> }).oneOf).map(b => b.properties.tool?.const)
      const evaluated = eventProposal(p.user) !== undefined && p.user.includes('RESULT of evaluate') && !p.user.includes('RESULT of vote')
      return evaluated && offered.includes('read_ledger') ? JSON.stringify({ tool: 'read_ledger', args: { last: -1, type: 'proposal' } }) : sensible(p.user)
    })
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-2' ? { model: new JsonToolChatModel(stubborn) } : {})
    })
    await sim.charter()
    await sim.round(1)
    const { llm, decisions } = agentOf(sim, 1).activity()
    expect(llm).toEqual({ calls: llm.calls, valid: llm.calls - 2, retried: 2, fallback: 0 })
    expect(decisions).toEqual({ train: { model: 1, policy: 0 }, publish: { model: 1, policy: 0 }, anchor: { model: 1, policy: 0 }, evaluate: { model: 2, policy: 0 }, vote: { model: 2, policy: 0 } })
    expect(stubborn.prompts.some(u => u.includes('RESULT of read_ledger'))).toBe(false) // the refused call never ran
    expect((await votesOnLedger(sim)).filter(v => v.issuer === sim?.participants[1]?.did).map(v => v.vote.decidedBy)).toEqual(['scripted', 'scripted'])
  })

  it('bounds every model call: a model that never answers (a stalled server) is retried, then the policy votes in its place, on the record', async () => {
    // agent-2's model proposes, then stalls on every call about a peer's proposal, deaf to any signal.
    const stalled = { ...scripted(p => sensible(p.user)), name: 'ollama:stalled' }
    const answer = stalled.complete.bind(stalled)
    stalled.complete = async (prompt, schema, options) => eventProposal(prompt.user) === undefined ? answer(prompt, schema, options) : new Promise<string>(() => {})
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => ParticipantAgent.create(participant, context, participant.name === 'agent-2' ? { model: new JsonToolChatModel(stalled), llmTimeoutMs: 50 } : {})
    })
    await sim.charter()
    await sim.round(1)
    const agent = agentOf(sim, 1)
    const { llm, decisions } = agent.activity()
    // each of the 3 steps per peer proposal (evaluate, vote, end the turn): no answer, no answer to the retry, the policy
    expect(llm).toEqual({ calls: 4 + 2 * 3, valid: 4, retried: 2 * 3, fallback: 2 * 3 })
    expect(decisions).toEqual({ train: { model: 1, policy: 0 }, publish: { model: 1, policy: 0 }, anchor: { model: 1, policy: 0 }, evaluate: { model: 0, policy: 2 }, vote: { model: 0, policy: 2 } })
    expect((await votesOnLedger(sim)).filter(v => v.issuer === agent.participant.did).map(v => v.vote.decidedBy)).toEqual(['policy', 'policy'])
    expect(agent.busy).toBe(false)
  })

  it('refuses at start-up a ready model whose name its votes could not record', async () => {
    let refused: unknown
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => {
        if (participant.name === 'agent-2') {
          const model = new JsonToolChatModel({ ...scripted(p => sensible(p.user)), name: 'gguf:gemma-3-270m (1).gguf' })
          refused = await ParticipantAgent.create(participant, context, { model }).then(() => undefined, (err: unknown) => err)
        }
        return ParticipantAgent.create(participant, context)
      }
    })
    expect(refused).toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
  })

  it('loads a plugin tool from the config and an agent calls it; its prompt, persona and the tool\'s when-to-use reach the model', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'conclave.yaml'), `agent:\n  tools: [${join(process.cwd(), 'examples/plugin-tool/index.ts')}]\n`)
    await writeFile(join(dir, 'terse.md'), 'You are {name}. {judgement}\nBe brief.')
    const plugins = await loadPluginTools([join(process.cwd(), 'examples/plugin-tool/index.ts')], dir)
    expect(plugins.map(p => p.name)).toEqual(['ledger_stats'])
    const systems = new Set<string>()
    // A model that checks who has been voting before it judges, then leaves the rest to the rule.
    const model = scripted(p => {
      systems.add(p.system)
      const proposal = eventProposal(p.user)
      if (proposal === undefined) return JSON.stringify({ reply: 'skip' })
      if (!p.user.includes('RESULT of ledger_stats')) return JSON.stringify({ tool: 'ledger_stats', args: { type: 'vote' } })
      if (!p.user.includes('RESULT of evaluate')) return JSON.stringify({ tool: 'evaluate', args: { proposal } })
      if (!p.user.includes('RESULT of vote')) return JSON.stringify({ tool: 'vote', args: { proposal, accept: /"passesRule":true/.test(p.user), rationale: 'checked the ledger and my validation data' } })
      return JSON.stringify({ reply: 'voted' })
    })
    sim = await Simulation.create(smallConfig({ rounds: 1, agent: { judgement: 'guarded' } }), {
      dir,
      driver: async (participant, context) => ParticipantAgent.create(participant, context, {
        plugins,
        ...(participant.name === 'agent-1' ? { model: new JsonToolChatModel(model), prompt: join(dir, 'terse.md'), personas: { 'agent-1': 'a sceptic who checks the record first.' } } : {})
      })
    })
    await sim.charter()
    await sim.round(1)
    const agent1 = agentOf(sim, 0)
    expect(agent1.toolNames).toContain('ledger_stats')
    expect(agent1.activity().toolCalls.ledger_stats).toBe(2)
    expect(model.prompts.some(u => /RESULT of ledger_stats: \{"byType":\{"charter":1/.test(u))).toBe(true)
    for (const system of systems) expect(system).toMatch(/^You are agent-1\. Accept or reject is your judgement, within the rule: .*\nBe brief\.\n\nYour persona: a sceptic who checks the record first\./)
    // a peer's proposal, the event the plugin declares it fits, names it to the model; the round's opening does not
    const named = (u: string): boolean => u.includes('Tools whose "use it when" fits this event: ledger_stats.')
    expect(new Set(model.prompts.filter(u => u.includes('proposed update')).map(named))).toEqual(new Set([true]))
    expect(model.prompts.filter(u => u.includes('is open')).some(named)).toBe(false)
    expect(() => defineTool({ ...plugins[0] as ToolDefinition, events: ['vote' as never] })).toThrow(TypeError)
    // offered (once per turn) with when to use it
    expect([...systems].some(system => /- ledger_stats: Count the records .* Use it when you want to know who has been proposing or voting before you judge a proposal/.test(system))).toBe(true)
    expect(await agent1.chat('!tools')).toMatch(/ledger_stats/)
    const mine = (await votesOnLedger(sim)).filter(v => v.issuer === agent1.participant.did)
    expect(mine.map(v => v.vote.rationale).every(r => r.endsWith('checked the ledger and my validation data'))).toBe(true)
  })
})

describe('a killed agent restarts where it was', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  // Before its turn began: the proposal's event was queued, and died with the agent; nothing in its memory says it owes a vote.
  it.each(['before its turn on the proposal began', 'after evaluating, before voting', 'after voting, before its memory caught up'] as const)('%s: it resumes, never votes twice, and the audit passes', async (when) => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    const victim = 1
    const s = sim
    const moment = ({ 'before its turn on the proposal began': 'conclave:record:applied', 'after evaluating, before voting': 'conclave:evaluated', 'after voting, before its memory caught up': 'conclave:vote:cast' } as const)[when]
    agentOf(sim, victim).participant.once(moment, () => { void agentOf(s, victim).kill() })
    await sim.propose(1, [sim.participants[0]!])
    const proposal = sim.participants[0]?.state.rounds.get(1)?.proposals[0] as string
    const victimDid = sim.participants[victim]?.did
    const votesBefore = (await votesOnLedger(sim)).filter(v => v.issuer === victimDid).length
    expect(votesBefore).toBe(when === 'after voting, before its memory caught up' ? 1 : 0)

    const fresh = await sim.restart(victim)
    expect(fresh.myVote(proposal)).toBeDefined()
    const after = (await votesOnLedger(sim)).filter(v => v.issuer === victimDid && v.vote.proposal === proposal)
    expect(after).toHaveLength(1)

    await sim.propose(1, sim.participants.slice(1))
    await sim.closeRound(1)
    expect((await votesOnLedger(sim)).filter(v => v.issuer === victimDid && v.vote.proposal === proposal)).toHaveLength(1)
    const result = await audit(sim.ledger, sim.store)
    expect(result.ok).toBe(true)
  })
})

describe('tool errors', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  /** A federation where agent-1 has `plugin` and a model that calls it once when a round opens, then does the sensible thing. */
  async function withPlugin (plugin: AgentTool): Promise<{ sim: Simulation, model: ReturnType<typeof scripted>, memory: () => Promise<BaseMessage[]> }> {
    const model = scripted(p => eventProposal(p.user) === undefined && !p.user.includes(`RESULT of ${plugin.name}`) ? JSON.stringify({ tool: plugin.name, args: {} }) : sensible(p.user))
    let agent1: { dir: string, did: string } | undefined
    const s = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => {
        if (participant.name !== 'agent-1') return ParticipantAgent.create(participant, context, { plugins: [plugin] })
        agent1 = { dir: context.dir, did: participant.did }
        return ParticipantAgent.create(participant, context, { plugins: [plugin], model: new JsonToolChatModel(model) })
      }
    })
    const memory = async (): Promise<BaseMessage[]> => {
      const saved = await (await FileCheckpointSaver.open(join(agent1?.dir as string, 'memory.json'))).getTuple({ configurable: { thread_id: agent1?.did } })
      return (saved?.checkpoint.channel_values.messages ?? []) as BaseMessage[]
    }
    return { sim: s, model, memory }
  }

  it('a tool that throws anything but a ConclaveError (a bug) ends the agent\'s run with that very error', async () => {
    const bug = new TypeError('a plugin bug')
    const federation = await withPlugin(defineTool({ name: 'buggy', description: 'Breaks.', schema: z.object({}), run: async () => { throw bug } }))
    sim = federation.sim
    await sim.charter()
    await expect(sim.round(1)).rejects.toBe(bug)
    expect(federation.model.prompts.some(u => u.includes('RESULT of buggy'))).toBe(false) // the model was never told
  })

  it('a tool that throws a ConclaveError gives the model a tool message with status error, and the run goes on', async () => {
    class NotNowError extends ConclaveError {}
    const federation = await withPlugin(defineTool({ name: 'picky', description: 'Refuses.', schema: z.object({}), run: async () => { throw new NotNowError('not in this round') } }))
    sim = federation.sim
    await sim.charter()
    await sim.round(1)
    expect((await federation.memory()).filter(m => m.type === 'tool').map(m => ({ name: (m as ToolMessage).name, status: (m as ToolMessage).status }))).toEqual([
      { name: 'picky', status: 'error' }, { name: 'train', status: 'success' }, { name: 'publish', status: 'success' }, { name: 'anchor', status: 'success' },
      { name: 'evaluate', status: 'success' }, { name: 'vote', status: 'success' }, { name: 'evaluate', status: 'success' }, { name: 'vote', status: 'success' }
    ])
    // each step's decider is in the memory a restarted agent resumes from: a vote it then casts is recorded as that decider's
    expect(new Set((await federation.memory()).filter(m => m.type === 'ai').map(m => m.name))).toEqual(new Set(['scripted']))
    expect(sim.participants[0]?.state.rounds.get(1)?.proposals).toHaveLength(3)
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })
})

describe('a turn that ends without the vote it owes', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  // kubo that gives no answer in time, once: the policy stops the turn on the tool's error, and the vote would never come.
  it('is taken again, and the vote is cast: a store that failed once costs no vote', async () => {
    let failures = 0
    sim = await Simulation.create(smallConfig({ rounds: 1 }), {
      dir: await tempDir(),
      driver: async (participant, context) => {
        if (participant.name === 'agent-1') {
          const evaluate = participant.evaluate.bind(participant)
          participant.evaluate = async (...args) => {
            if (failures++ === 0) throw new BackendUnavailableError('kubo at http://127.0.0.1:5001 gave no answer to cat within 30000 ms')
            return evaluate(...args)
          }
        }
        return ParticipantAgent.create(participant, context)
      }
    })
    await sim.charter()
    await sim.round(1)
    const agent1 = sim.participants[0]?.did
    const judged = (await votesOnLedger(sim)).filter(v => v.issuer === agent1).map(v => v.vote.proposal)
    const peers = (sim.participants[0]?.state.rounds.get(1)?.proposals ?? []).filter(id => sim?.participants[0]?.state.proposals.get(id)?.signed.issuer !== agent1)
    expect(failures).toBeGreaterThan(1)
    expect(judged.sort()).toEqual(peers.sort())
    expect(agentOf(sim, 0).toolCalls.evaluate).toBe(3) // one failed, then one per peer
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  })
})
