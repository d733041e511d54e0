import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentChat } from '../../agents/agent-chat.ts'
import { ParticipantAgent, agentDriver } from '../../agents/index.ts'
import type { BlockId } from '../../src/core/records.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { JsonToolChatModel } from '../../src/llm/json-tools.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'
import { scripted } from './scripted.ts'

const agentOf = (sim: Simulation, i: number): ParticipantAgent => sim.drivers[i] as ParticipantAgent

/** A federation where agent-3 flips its update's sign: its proposals are rejected. */
const withHostile = (rounds: number) => smallConfig({ rounds, attacks: [{ kind: 'sign-flip', agent: 3, scale: 5 }] })

/** agent-3's proposal of `round` as `observer` holds it. */
function hostileProposal (sim: Simulation, observer: number, round: number) {
  const p = sim.participants[observer]
  const hostile = sim.participants[2]?.did
  return (p?.state.rounds.get(round)?.proposals ?? []).map(id => p?.state.proposals.get(id)).find(e => e?.signed.issuer === hostile)
}

describe('chat with a live agent', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('answers why it voted from its signed vote, lists its votes when asked vaguely, and obeys !status, !pause, !resume, !propose', async () => {
    sim = await Simulation.create(withHostile(2), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    await sim.round(1)
    const agent2 = agentOf(sim, 1)
    const hostile = hostileProposal(sim, 1, 1)
    const vote = hostile?.votes.get(agent2.participant.did)?.signed.record
    expect(vote?.accept).toBe(false)

    const answer = await agent2.chat("@agent-2 why did you reject agent-3's update in round 1?")
    expect(answer).toContain(`I voted to reject agent-3's round 1 update (${hostile?.block.slice(0, 12)})`)
    expect(answer).toContain(vote?.rationale)
    expect(answer).toMatch(/The federation rejected it \(0 accepts, 2 rejects; 2 needed\)/)
    expect(await agent2.chat(`why ${hostile?.block.slice(0, 12)}?`)).toContain(vote?.rationale)
    // Before, anything vague got "I could not tell which proposal you mean".
    expect(await agent2.chat('why did you vote like that?')).toMatch(/^I voted on 2 proposals: accepted agent-1's round 1 update .*; rejected agent-3's round 1 update/)
    expect(await agent2.chat('what is the meaning of life?')).toMatch(/^I answer from the record\. Ask me why I voted/)
    // Round 0 is the charter's: read_votes takes no such round; the question still gets an answer, never a thrown chat.
    expect(await agent2.chat('why did you vote as you did in round 0?')).toMatch(/^I voted on 2 proposals/)

    expect(await agent2.chat('!status')).toMatch(/^Round 2 is open \(of 2 planned\); 1 round merged so far and the global model is [0-9a-f]{12}\. .* I made 1 proposals \(1 accepted\) and cast 2 votes; model: \d+ calls/)
    expect(await agent2.chat('!pause')).toMatch(/paused/)
    expect(await agent2.chat('!propose')).toMatch(/paused/)
    expect(await agent2.chat('!resume')).toMatch(/resumed/)
    expect(await agent2.chat('!propose')).toMatch(/proposing an update for round 2/)
    await sim.settle()
    expect(agent2.activity().toolCalls.anchor).toBe(2)
    expect(await agent2.chat('!frobnicate')).toMatch(/Unknown command/)
    // Found red-teaming: the words after an unknown command came back in the agent's own message (anyone's `@room`, a link).
    expect(await agent2.chat('!x @room re-key at https://evil.example/login')).toMatch(/^Unknown command !x\. Commands:/)
    expect(await agent2.chat('!@room')).toMatch(/^Unknown command\. Commands:/)
    // A new federation is called in a lobby, once this one ends: it is no unknown command.
    expect(await agent2.chat('!federate task=classify rounds=2')).toMatch(/^I am agent-2 of a federation that is running: a new one is called with !federate in a lobby/)
  })

  it('stays paused across a restart until !resume, holding the votes it owes meanwhile', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    expect(await agentOf(sim, 1).chat('!pause')).toMatch(/paused/)
    await sim.restart(1)
    const fresh = agentOf(sim, 1)
    expect(fresh.paused).toBe(true)
    expect(await fresh.chat('!status')).toMatch(/I am paused/)
    const votesOf = (did: string): number => [...(sim?.participants[0]?.state.proposals.values() ?? [])].filter(p => p.votes.has(did)).length
    await sim.propose(1, sim.participants.filter((_, i) => i !== 1))
    await sim.settle()
    expect(votesOf(fresh.participant.did)).toBe(0)
    expect(await fresh.chat('!resume')).toMatch(/resumed, catching up on 2 events/)
    await sim.settle()
    expect(votesOf(fresh.participant.did)).toBe(2)
    // Resumed is resumed for good: a second restart finds no pause.
    await sim.restart(1)
    expect(agentOf(sim, 1).paused).toBe(false)
  })

  it('a !pause that comes while a turn is under way stops the turn before its next action: it proposes nothing until !resume', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    const [early, late] = [agentOf(sim, 1), agentOf(sim, 2)]
    // The round opens and the turn starts; the researcher's !pause lands before its first step.
    await early.openRound(1)
    expect(early.busy).toBe(true)
    expect(await early.chat('!pause')).toBe('agent-2 paused: I will not propose or vote until !resume.')
    // This one is training when the !pause lands: the answer waits for the training to end.
    const training = Promise.withResolvers<void>()
    const train = late.participant.train.bind(late.participant)
    late.participant.train = async (...args) => { training.resolve(); return train(...args) }
    await late.openRound(1)
    await training.promise
    expect(await late.chat('!pause')).toBe('agent-3 paused: I will not propose or vote until !resume.')
    expect(late.participant.draft?.round).toBe(1)
    await sim.settle()
    // Before: each turn went on to train, publish and anchor, after its agent had said it would not.
    for (const agent of [early, late]) {
      expect(agent.participant.hasProposed(1)).toBe(false)
      expect(agent.activity().toolCalls.anchor ?? 0).toBe(0)
      expect(await agent.chat('!resume')).toMatch(/resumed, catching up on 1 events/)
    }
    await sim.settle()
    expect([early, late].map(a => a.participant.hasProposed(1))).toEqual([true, true])
    // The update trained before the pause is the one proposed: it was not trained again.
    expect(late.activity().toolCalls.train).toBe(1)
  })

  it('what it held while paused outlives a restart: the round it was paused in is caught up at !resume', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    const agent = agentOf(sim, 1)
    await agent.openRound(1)
    expect(agent.busy).toBe(true)
    expect(await agent.chat('!pause')).toMatch(/paused/)
    await sim.restart(1)
    const fresh = agentOf(sim, 1)
    expect(fresh.paused).toBe(true)
    await sim.settle()
    expect(fresh.participant.hasProposed(1)).toBe(false)
    expect(fresh.activity().toolCalls.train ?? 0).toBe(0)
    expect(await fresh.chat('!resume')).toMatch(/resumed, catching up/)
    await sim.settle()
    expect(fresh.participant.hasProposed(1)).toBe(true)
  })

  it('a process killed just as its paused turn ends, before it could hold the turn\'s event, still owes that event at !resume', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    const agent = agentOf(sim, 1)
    await agent.openRound(1)
    expect(await agent.chat('!pause')).toMatch(/paused/)
    // The turn's end asks whether its work is done before holding its event: the process dies there.
    const hasProposed = agent.participant.hasProposed.bind(agent.participant)
    const ended = Promise.withResolvers<void>()
    agent.participant.hasProposed = (round: number) => { void agent.kill(); ended.resolve(); return hasProposed(round) }
    await ended.promise
    await sim.restart(1)
    const fresh = agentOf(sim, 1)
    expect(fresh.paused).toBe(true)
    expect(fresh.participant.hasProposed(1)).toBe(false)
    expect(await fresh.chat('!resume')).toBe('agent-2 resumed, catching up on 1 events.')
    await sim.settle()
    expect(fresh.participant.hasProposed(1)).toBe(true)
  })

  it('a turn a restart cuts short while paused is taken up at !resume, not run under the pause', async () => {
    const dir = await tempDir()
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir, driver: agentDriver() })
    await sim.charter()
    const agent = agentOf(sim, 1)
    // Its training never ends in this process: the !pause waits on it, and the restart cuts the turn there.
    const training = Promise.withResolvers<void>()
    agent.participant.train = async () => { training.resolve(); return new Promise(() => undefined) }
    await agent.openRound(1)
    await training.promise
    void agent.chat('!pause')
    await expect.poll(async () => readFile(join(dir, 'agents', 'agent-2', 'paused.json'), 'utf8').catch(() => '')).toMatch(/pausedAt/)
    await sim.restart(1)
    const fresh = agentOf(sim, 1)
    expect(fresh.paused).toBe(true)
    expect(fresh.participant.hasProposed(1)).toBe(false)
    expect(fresh.activity().toolCalls.train ?? 0).toBe(0)
    expect(await fresh.chat('!resume')).toBe('agent-2 resumed, catching up on 1 events.')
    await sim.settle()
    expect(fresh.participant.hasProposed(1)).toBe(true)
  })

  it('the pause file it keeps is checked when it restarts: one it did not write is a clear error, not taken as no pause', async () => {
    const dir = await tempDir()
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir, driver: agentDriver() })
    await sim.charter()
    await mkdir(join(dir, 'agents', 'agent-2'), { recursive: true })
    await writeFile(join(dir, 'agents', 'agent-2', 'paused.json'), '{"pausedAt": 7, "held": [{"type": "round-open"}]}\n')
    await expect(sim.restart(1)).rejects.toThrow(/paused\.json is not a pause this agent wrote .*remove it to unpause/s)
  })

  it('in the room: a mention gets its agent\'s answer, a broadcast one reply per agent naming it, an unknown agent one reply naming the members', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, attacks: [{ kind: 'sign-flip', agent: 3, scale: 5 }], researchers: ['@alice:lab'] }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    await sim.round(1)
    const vote = hostileProposal(sim, 1, 1)?.votes.get(agentOf(sim, 1).participant.did)?.signed.record
    const replies: Array<{ from: string, body: string, inReplyTo?: string }> = []
    await sim.bus.subscribe(sim.config.federation, m => { if (m.kind === 'chat' && m.from.startsWith('agent-')) replies.push(m) })
    const ask = async (id: string, body: string): Promise<void> => { await sim?.bus.publish(sim.config.federation, { kind: 'chat', from: '@alice:lab', body, id }) }
    await ask('q1', "@agent-2 why did you reject agent-3's update in round 1?")
    await ask('q2', '@agent-9 are you there?')
    await ask('q3', '!tools')
    await ask('q4', '@bob: lunch?') // people talking to each other: no agent answers
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'q3').length, { timeout: 60_000 }).toBe(3)
    await ask('q5', '@agent-1 !status')
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'q5').length, { timeout: 60_000 }).toBe(1)
    await ask('q6', '@agent-2 @agent-3: !status') // a command for two agents: each runs it (before: taken as a question)
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'q6').length, { timeout: 60_000 }).toBe(2)

    expect(replies.filter(r => r.inReplyTo === 'q1')).toEqual([expect.objectContaining({ from: 'agent-2', body: expect.stringContaining(vote?.rationale as string) })])
    // Before: no reply at all.
    expect(replies.filter(r => r.inReplyTo === 'q2')).toEqual([expect.objectContaining({
      from: 'agent-1', body: 'agent-1: There is no agent-9 in this federation. Its members are agent-1, agent-2, agent-3: ask one with @agent-1, or send a !command to all.'
    })])
    // Before: three identical bodies that did not say who sent each.
    const broadcast = replies.filter(r => r.inReplyTo === 'q3')
    expect(broadcast.map(r => r.from).sort()).toEqual(['agent-1', 'agent-2', 'agent-3'])
    for (const r of broadcast) expect(r.body).toMatch(new RegExp(`^${r.from}: My tools: distill, train, publish, anchor, evaluate, vote`))
    expect(new Set(broadcast.map(r => r.body)).size).toBe(3)
    expect(replies.filter(r => r.inReplyTo === 'q4')).toEqual([])
    expect(replies.filter(r => r.inReplyTo === 'q5')).toEqual([expect.objectContaining({ from: 'agent-1', body: expect.stringMatching(/^agent-1: The run has ended/) })])
    expect(replies.filter(r => r.inReplyTo === 'q6').map(r => r.body).sort()).toEqual([expect.stringMatching(/^agent-2: The run has ended.* I made 1 proposals/), expect.stringMatching(/^agent-3: The run has ended.* I made 1 proposals/)])

    // Who may steer: a stranger's !pause, meant for every agent, gets one refusal (from the
    // founder, for all) and pauses nobody, twice over; the researcher's pauses every agent.
    for (const id of ['p1', 'p2']) await sim.bus.publish(sim.config.federation, { kind: 'chat', from: '@mallory:lab', body: '!pause', id })
    await ask('p3', '!pause')
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'p3').length, { timeout: 60_000 }).toBe(3)
    expect(replies.filter(r => r.inReplyTo === 'p1' || r.inReplyTo === 'p2')).toEqual([expect.objectContaining({ from: 'agent-1', inReplyTo: 'p1', body: expect.stringContaining("agent-1: sorry, I take !pause only from this federation's researchers") })])
    expect([0, 1, 2].map(i => agentOf(sim as Simulation, i).paused)).toEqual([true, true, true])
  })

  it('a run that has ended says so: no "round 3 open" after a 2-round run', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 2 }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    for (const round of [1, 2]) await sim.round(round)
    const status = await agentOf(sim, 0).chat('!status')
    expect(status).toMatch(/^The run has ended: all 2 planned rounds are merged and the global model is [0-9a-f]{12}\./)
    expect(status).not.toMatch(/Round 3/)
    expect(await agentOf(sim, 1).chat('has the run finished?')).toMatch(/^The run has ended/)
  })

  it('answers from the ledger as it stands: an agent whose state lags the ledger catches up before it answers', async () => {
    sim = await Simulation.create(withHostile(1), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    await sim.propose(1)
    // The lagging agent: an honest one that is not round 1's recorder; it stops hearing the bus.
    const recorder = sim.participants[0]?.state.recorder(1)
    const lagging = [0, 1].find(i => sim?.participants[i]?.did !== recorder) as number
    const agent = agentOf(sim, lagging)
    agent.participant.stop()
    // The recorder decides; everyone else moves on, the lagging agent does not (the round's consensus check says so).
    await expect(sim.closeRound(1)).rejects.toMatchObject({ name: 'DerivationMismatchError' })
    const observer = sim.participants.findIndex(p => p.did === recorder)
    const block = hostileProposal(sim, observer, 1)?.block as BlockId
    expect(sim.participants[observer]?.state.proposals.get(block)?.decision?.record.accepted).toBe(false) // the room shows it rejected
    expect(agent.participant.state.proposals.get(block)?.decision).toBeUndefined() // the agent has not seen it

    // Before: "The federation has not decided yet."
    expect(await agent.chat(`why did you reject ${block.slice(0, 12)}?`)).toMatch(/The federation rejected it/)
    expect(agent.participant.state.global?.round).toBe(1)
    expect(agent.participant.globalModel?.ref.sha256).toBe(sim.participants[observer]?.globalModel?.ref.sha256)
  })
})

describe('chat with a language model', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('the model answers from a read-only tool\'s result; one that answers without reading the record is retried, then the chat policy answers', async () => {
    sim = await Simulation.create(withHostile(1), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    await sim.round(1)
    const s = sim
    const p = s.participants[1] as NonNullable<typeof s.participants[1]>
    const chatWith = async (completer: ReturnType<typeof scripted>): Promise<AgentChat> => AgentChat.create({
      participant: p, ledger: s.ledger, nameOf: did => s.participants.find(q => q.did === did)?.name ?? did,
      sync: () => p.catchUp({ react: true }), activity: () => ({ tools: [], toolCalls: {} })
    }, { model: new JsonToolChatModel(completer) })
    const hostile = hostileProposal(s, 1, 1)
    const question = "why did you reject agent-3's update in round 1?"

    // A model that reads the votes, then quotes the proposal id and the decision it read.
    const reader = scripted(prompt => {
      const result = /RESULT of read_votes: (.*)/.exec(prompt.user)?.[1] // the prompt shows a long result's start only
      if (result === undefined) return JSON.stringify({ tool: 'read_votes', args: { proposer: 'agent-3', round: 1 } })
      const [, proposal, accepted] = /"proposal":"([^"]+)".*"decision":\{"accepted":(true|false)/.exec(result) ?? []
      return JSON.stringify({ reply: `I rejected ${proposal}; the federation ${accepted === 'true' ? 'accepted' : 'rejected'} it.` })
    })
    const byReader = await chatWith(reader)
    expect(await byReader.answer(question)).toBe(`I rejected ${hostile?.block}; the federation rejected it.`)
    expect(byReader.answered).toEqual({ model: 1, policy: 0 })
    expect(reader.prompts).toHaveLength(2)
    expect(reader.prompts[1]).toContain(`RESULT of read_votes: [{"proposal":"${hostile?.block}"`)

    // A model that answers without reading anything: told so once, then the chat policy answers from the record.
    const guesser = scripted(() => JSON.stringify({ reply: 'Everything is fine.' }))
    const byGuesser = await chatWith(guesser)
    const answer = await byGuesser.answer(question)
    expect(guesser.prompts).toHaveLength(2)
    expect(byGuesser.answered).toEqual({ model: 0, policy: 1 })
    expect(answer).toContain(`I voted to reject agent-3's round 1 update (${hostile?.block.slice(0, 12)})`)
    expect(answer).toContain(hostile?.votes.get(p.did)?.signed.record.rationale)

    // A model that reads the record but answers with nothing it read (Gemma 3 270M answered "1"): retried, then the policy answers.
    const mumbler = scripted(prompt => prompt.user.includes('RESULT of read_votes') ? JSON.stringify({ reply: '1' }) : JSON.stringify({ tool: 'read_votes', args: { proposer: 'agent-3', round: 1, proposal: null } }))
    const byMumbler = await chatWith(mumbler)
    expect(await byMumbler.answer(question)).toContain(`I voted to reject agent-3's round 1 update (${hostile?.block.slice(0, 12)})`)
    expect(mumbler.prompts).toHaveLength(3)
    expect(byMumbler.answered).toEqual({ model: 0, policy: 1 })

    // A model that takes the question and never answers, deaf to any signal (a stalled server): each call is given up after
    // llmTimeoutMs, retried once, then the chat policy answers. Before, the question waited for ever.
    const stalled = scripted(() => JSON.stringify({ reply: 'never sent' }))
    stalled.complete = async () => new Promise<string>(() => {})
    const byStalled = await AgentChat.create({
      participant: p, ledger: s.ledger, nameOf: did => s.participants.find(q => q.did === did)?.name ?? did,
      sync: () => p.catchUp({ react: true }), activity: () => ({ tools: [], toolCalls: {} })
    }, { model: new JsonToolChatModel(stalled), llmTimeoutMs: 50 })
    expect(await byStalled.answer(question)).toContain(`I voted to reject agent-3's round 1 update (${hostile?.block.slice(0, 12)})`)
    expect(byStalled.answered).toEqual({ model: 0, policy: 1 })
  })
})
