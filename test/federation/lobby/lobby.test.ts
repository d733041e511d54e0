import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ConfigError } from '../../../src/core/errors.ts'
import { Call, enrolment, federationOf } from '../../../src/federation/lobby/call.ts'
import { Lobby, type Start } from '../../../src/federation/lobby/lobby.ts'
import { createIdentity } from '../../../src/identity/index.ts'
import { randomSecretKey } from '../../../src/identity/did-key.ts'
import { createLocalBus } from '../../../src/transport/local.ts'
import type { Bus, BusMessage } from '../../../src/transport/index.ts'

const ROOM = 'lab-lobby'
const AGENTS = ['@lab.agent-1:lab', '@lab.agent-2:lab', '@lab.agent-3:lab']
const ALICE = '@alice:lab'
const MALLORY = '@mallory:lab'

/** Lobbies of the given agents (by 0-based position) on one in-process bus, and everything said in the room. */
async function lobbies (present = [0, 1, 2], check: (call: Call, members: number) => void = () => {}, clock?: () => number) {
  const bus = createLocalBus({ clock })
  const heard: BusMessage[] = []
  await bus.subscribe(ROOM, m => { heard.push(m) })
  const agents = await Promise.all(present.map(async i => {
    const identity = createIdentity(randomSecretKey())
    const lobby = new Lobby({ identity, bus, room: ROOM, agents: AGENTS, account: AGENTS[i] as string, name: `agent-${i + 1}`, chat: { steer: new Set([ALICE, ...AGENTS]), limit: { messages: 6, seconds: 60, others: 30 } }, check })
    await lobby.listen()
    return { identity, lobby }
  }))
  let n = 0
  const say = async (from: string, body: string): Promise<string> => {
    const id = `$event-${n++}`
    await bus.publish(ROOM, { kind: 'chat', from, body, id })
    await settle(bus)
    return id
  }
  return { bus, heard, agents, say }
}

/** Lets every queued delivery, and what it publishes in turn, run. */
async function settle (bus: Bus): Promise<void> {
  for (let i = 0; i < 20; i++) { await bus.settled?.(); await vi.advanceTimersByTimeAsync(0) }
}

const replies = (heard: BusMessage[], to: string): Array<{ from: string, body: string }> =>
  heard.flatMap(m => m.kind === 'chat' && m.inReplyTo === to ? [{ from: m.from, body: m.body }] : [])
const kinds = (heard: BusMessage[]): string[] => heard.map(m => m.kind)

describe('agents in a lobby, called to federate from the room', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('a researcher\'s !federate: every agent present signs, the first convenes, and all start the same federation, founder first', async () => {
    const { heard, agents, say, bus } = await lobbies()
    const starts = agents.map(async a => a.lobby.next())
    const call = await say(ALICE, '!federate task=classify rounds=2')
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating', 'federating'])
    const started: Start[] = await Promise.all(starts)
    const dids = agents.map(a => a.identity.did)
    for (const s of started) expect({ federation: s.federation, members: s.members, call: s.call.id, request: s.call.request }).toEqual({ federation: federationOf(ROOM, call), members: dids, call, request: { task: 'classify', rounds: 2, wait: 30 } })
    expect(kinds(heard)).toEqual(['chat', 'enrol', 'enrol', 'enrol', 'roster'])
    expect(heard.at(-1)).toMatchObject({ kind: 'roster', from: AGENTS[0], call, members: dids })
    // Back in the lobby once it ends: the next call starts another federation.
    for (const a of agents) a.lobby.finished()
    expect(agents.map(a => a.lobby.phase)).toEqual(['idle', 'idle', 'idle'])
    const again = await say(ALICE, '!federate task=ner rounds=1')
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating', 'federating'])
    expect(federationOf(ROOM, again)).not.toBe(federationOf(ROOM, call))
  })

  it('a stranger\'s !federate and !pause are refused once, by the lobby\'s first agent, and change nothing', async () => {
    const { heard, agents, say } = await lobbies()
    const federate = await say(MALLORY, '!federate task=classify rounds=2')
    const pause = await say(MALLORY, '!pause')
    expect(replies(heard, federate)).toEqual([{ from: 'agent-1', body: "agent-1: sorry, I take !federate only from this federation's researchers. You can still ask me !status." }])
    expect(replies(heard, pause)).toEqual([]) // one refusal per sender and window; then silence
    expect(agents.map(a => a.lobby.phase)).toEqual(['idle', 'idle', 'idle'])
    expect(kinds(heard).filter(k => k !== 'chat')).toEqual([])
    const other = await say('@eve:lab', '@agent-2 !pause')
    expect(replies(heard, other)).toEqual([{ from: 'agent-2', body: "agent-2: sorry, I take !pause only from this federation's researchers. You can still ask me !status." }])
  })

  it('a message addressed to two agents is answered by both, and by no other', async () => {
    const { heard, say } = await lobbies()
    const both = await say(ALICE, '@agent-2 @agent-3: !status')
    expect(replies(heard, both).map(r => r.from).sort()).toEqual(['agent-2', 'agent-3'])
    const one = await say(ALICE, '@agent-3, !status')
    expect(replies(heard, one).map(r => r.from)).toEqual(['agent-3'])
  })

  it('a bad command gets one reply naming what is wrong, and nobody enrols', async () => {
    const { heard, agents, say } = await lobbies()
    const bad = await say(ALICE, '!federate task=classify rounds=zero colour=red')
    expect(replies(heard, bad)).toEqual([{ from: 'agent-1', body: expect.stringMatching(/^agent-1: I cannot start that federation: unknown setting colour .*rounds: expected a whole number/) }])
    expect(agents.map(a => a.lobby.phase)).toEqual(['idle', 'idle', 'idle'])
  })

  it('starts with the agents that answered within the call\'s wait, and names them in lobby order', async () => {
    const { heard, agents, say, bus } = await lobbies([2, 0])
    const call = await say(ALICE, '!federate task=classify rounds=1 wait=20')
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling', 'enrolling'])
    expect(kinds(heard)).toEqual(['chat', 'enrol', 'enrol'])
    await vi.advanceTimersByTimeAsync(20_000)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
    // agent-3 answered first (it convenes), but agent-1 comes first in the lobby: it founds.
    expect(heard.at(-1)).toMatchObject({ kind: 'roster', from: AGENTS[2], call, members: [agents[1]?.identity.did, agents[0]?.identity.did] })
  })

  it('a call the members could not run is answered with why, and everyone is back in the lobby', async () => {
    const check = (_: Call, members: number): void => { if (members < 4) throw new ConfigError(`a quorum of 3 accepts can never be met with ${members} members`) }
    const { heard, agents, say, bus } = await lobbies([0, 1, 2], check)
    const call = await say(ALICE, '!federate task=classify rounds=1 quorum=3')
    expect(replies(heard, call)).toEqual([{ from: 'agent-1', body: 'agent-1: I cannot start that federation: a quorum of 3 accepts can never be met with 3 members' }])
    expect(agents.map(a => a.lobby.phase)).toEqual(['idle', 'enrolling', 'enrolling'])
    await vi.advanceTimersByTimeAsync(90_000) // the call's wait and the grace for its roster
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['idle', 'idle', 'idle'])
    expect(kinds(heard).filter(k => k === 'roster')).toEqual([])
  })

  it('a researcher\'s second call while one is gathering is told the lobby is busy; while one runs, the lobby leaves the room to the federation', async () => {
    const { heard, agents, say, bus } = await lobbies([0, 1])
    await say(ALICE, '!federate task=classify rounds=2 wait=20')
    const second = await say(ALICE, '!federate task=ner rounds=5')
    expect(replies(heard, second)).toEqual([{ from: 'agent-1', body: expect.stringMatching(/^agent-1: busy: agent-1 has answered the call to federate lab-lobby\.f[0-9a-f]{10}, and waits for its roster\./) }])
    await vi.advanceTimersByTimeAsync(20_000)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
    const third = await say(ALICE, '!federate task=ner rounds=5')
    const stranger = await say(MALLORY, '!federate task=ner rounds=5')
    expect([...replies(heard, third), ...replies(heard, stranger)]).toEqual([])
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
  })
})

describe('a hostile lobby agent that answers a call first', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }) })
  afterEach(() => { vi.useRealTimers() })
  const evil = createIdentity(randomSecretKey())

  it('cannot leave an honest agent out: a roster that is not everyone who enrolled before it is refused by all', async () => {
    const { bus, agents } = await lobbies([0, 1])
    const call = '$call'
    await bus.publish(ROOM, { kind: 'chat', from: ALICE, body: '!federate task=classify rounds=2 wait=600', id: call })
    await bus.publish(ROOM, await enrolment(evil, call, AGENTS[2] as string)) // it raced the honest agents, and answered first
    await settle(bus)
    const [d1, d2] = agents.map(a => a.identity.did) as [string, string]
    await bus.publish(ROOM, { kind: 'roster', from: AGENTS[2] as string, call, members: [d1, evil.did] })
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling', 'enrolling'])
    // Everyone answered, so the convener need not wait: the whole roster stands at once.
    await bus.publish(ROOM, { kind: 'roster', from: AGENTS[2] as string, call, members: [d1, d2, evil.did] })
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
  })

  it('cannot cut the call\'s wait short while an agent of the lobby has not answered yet', async () => {
    const { bus, agents } = await lobbies([0])
    const call = '$call'
    await bus.publish(ROOM, { kind: 'chat', from: ALICE, body: '!federate task=classify rounds=2 wait=600', id: call })
    await bus.publish(ROOM, await enrolment(evil, call, AGENTS[2] as string))
    await settle(bus)
    const roster = { kind: 'roster' as const, from: AGENTS[2] as string, call, members: [agents[0]?.identity.did as string, evil.did] }
    await bus.publish(ROOM, roster)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling']) // agent-2 might still answer
    await vi.advanceTimersByTimeAsync(600_000)
    await bus.publish(ROOM, roster)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating'])
  })

  it('cannot stall the call by keeping silent: after the wait and a step, the second to answer convenes, and so on', async () => {
    const { bus, heard, agents, say } = await lobbies([0, 1])
    const call = '$call'
    await bus.publish(ROOM, { kind: 'chat', from: ALICE, body: '!federate task=classify rounds=2 wait=600', id: call })
    await bus.publish(ROOM, await enrolment(evil, call, AGENTS[2] as string))
    await settle(bus)
    expect(heard.flatMap(m => m.kind === 'enrol' ? [m.from] : [])).toEqual([AGENTS[2], AGENTS[0], AGENTS[1]])
    await vi.advanceTimersByTimeAsync(600_000)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling', 'enrolling'])
    // agent-2 answered third: its turn has not come, and agent-1's roster is refused before its own.
    const [d1, d2] = agents.map(a => a.identity.did) as [string, string]
    await bus.publish(ROOM, { kind: 'roster', from: AGENTS[1] as string, call, members: [d1, d2, evil.did] })
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling', 'enrolling'])
    await vi.advanceTimersByTimeAsync(30_000) // min(grace, 30 s): agent-1's turn
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
    expect(heard.filter(m => m.kind === 'roster').at(-1)).toMatchObject({ from: AGENTS[0], call, members: [d1, d2, evil.did] })
    const retry = await say(ALICE, '!federate task=classify rounds=2')
    expect(replies(heard, retry)).toEqual([]) // the lobby left the room to the federation
  })

  it('on a room that dates its messages, the roster\'s time counts, and an honest convener\'s roster passes', async () => {
    let now = 1_000_000
    const advance = async (seconds: number): Promise<void> => { now += seconds; await vi.advanceTimersByTimeAsync(seconds * 1000) }
    const { bus, heard, agents, say } = await lobbies([2, 0], () => {}, () => now)
    await say(ALICE, '!federate task=classify rounds=1 wait=20')
    await advance(19)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['enrolling', 'enrolling'])
    await advance(1)
    await settle(bus)
    expect(agents.map(a => a.lobby.phase)).toEqual(['federating', 'federating'])
    expect(heard.at(-1)).toMatchObject({ kind: 'roster', from: AGENTS[2] })
  })
})

describe('a call checks who answers it and who convenes', () => {
  const request = { task: 'classify' as const, rounds: 2, wait: 30 }
  const [a1, a2, stranger] = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey()), createIdentity(randomSecretKey())]

  it('takes enrolments only from the lobby\'s accounts, signed for this call and that account', async () => {
    const call = new Call('$c', request, AGENTS)
    await expect(call.enrol(await enrolment(stranger, '$c', MALLORY))).rejects.toMatchObject({ name: 'NotMemberError' })
    // An agent's account passing on someone else's signature: signed for another account.
    await expect(call.enrol({ ...await enrolment(stranger, '$c', MALLORY), from: AGENTS[1] as string })).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(call.enrol({ ...await enrolment(a1, '$other', AGENTS[0] as string), call: '$c' })).rejects.toMatchObject({ name: 'InvalidRecordError' })
    expect(await call.enrol(await enrolment(a1, '$other', AGENTS[0] as string))).toBeUndefined() // another call's
    expect(await call.enrol(await enrolment(a2, '$c', AGENTS[1] as string))).toBe(a2.did)
    await expect(call.enrol(await enrolment(a2, '$c', AGENTS[2] as string))).rejects.toMatchObject({ name: 'InvalidRecordError' }) // one DID, two accounts
    expect(await call.enrol(await enrolment(a1, '$c', AGENTS[0] as string))).toBe(a1.did)
    expect({ convener: call.conveners[0], draft: call.draft(), complete: call.complete }).toEqual({ convener: AGENTS[1], draft: [a1.did, a2.did], complete: false })
    // Whose hello is whose in the federation it starts (member.ts): the accounts the members enrolled from, in the charter's order.
    expect(call.accountsOf([a2.did, a1.did])).toEqual([AGENTS[1], AGENTS[0]])
    expect(call.accountsOf([a1.did, stranger.did])).toBeUndefined()
  })

  it('takes a roster once the call\'s wait is over: by the room\'s time where it dates both, else once my own clock says so', async () => {
    const dated = new Call('$c', request, AGENTS, { at: 1000 })
    await dated.enrol(await enrolment(a2, '$c', AGENTS[1] as string))
    await dated.enrol(await enrolment(a1, '$c', AGENTS[0] as string))
    const roster = { kind: 'roster' as const, from: AGENTS[1] as string, call: '$c', members: [a1.did, a2.did] }
    expect(() => dated.accept(roster, 1029)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(() => dated.accept(roster)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' })) // undated: my clock has not said so
    dated.turnCome(0)
    expect(() => dated.accept(roster, 1029)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' })) // the room's time counts where it has one
    expect(dated.accept(roster, 1030)).toEqual([a1.did, a2.did])
    const undated = new Call('$c', request, AGENTS)
    await undated.enrol(await enrolment(a2, '$c', AGENTS[1] as string))
    await undated.enrol(await enrolment(a1, '$c', AGENTS[0] as string))
    expect(() => undated.accept(roster, 5000)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    undated.turnCome(0)
    expect(undated.accept(roster)).toEqual([a1.did, a2.did])
  })

  it('passes convening on in the room\'s order of enrolment: the k-th to answer may send the roster once the wait and k steps are over', async () => {
    const dated = new Call('$c', request, AGENTS, { at: 1000 })
    await dated.enrol(await enrolment(a2, '$c', AGENTS[1] as string))
    await dated.enrol(await enrolment(a1, '$c', AGENTS[0] as string))
    const roster = (from: string): Extract<BusMessage, { kind: 'roster' }> => ({ kind: 'roster', from, call: '$c', members: [a1.did, a2.did] })
    expect(() => dated.accept(roster(AGENTS[2] as string), 5000)).toThrow(expect.objectContaining({ name: 'NotMemberError' })) // did not answer
    expect(() => dated.accept(roster(AGENTS[0] as string), 1030)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' })) // the first's turn
    expect(() => dated.accept(roster(AGENTS[0] as string), 1059)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(dated.accept(roster(AGENTS[0] as string), 1060)).toEqual([a1.did, a2.did])
    const undated = new Call('$c', request, AGENTS)
    await undated.enrol(await enrolment(a2, '$c', AGENTS[1] as string))
    await undated.enrol(await enrolment(a1, '$c', AGENTS[0] as string))
    undated.turnCome(0)
    expect(() => undated.accept(roster(AGENTS[0] as string))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    undated.turnCome(1)
    expect(undated.accept(roster(AGENTS[0] as string))).toEqual([a1.did, a2.did])
  })

  it('takes one roster, from the convener, listing everyone who enrolled and no one else, in lobby order', async () => {
    const call = new Call('$c', request, AGENTS)
    await call.enrol(await enrolment(a2, '$c', AGENTS[1] as string))
    await call.enrol(await enrolment(a1, '$c', AGENTS[0] as string))
    call.turnCome(0)
    const roster = (from: string, members: string[]): Extract<BusMessage, { kind: 'roster' }> => ({ kind: 'roster', from, call: '$c', members })
    expect(() => call.accept(roster(AGENTS[2] as string, [a1.did, a2.did]))).toThrow(expect.objectContaining({ name: 'NotMemberError' })) // did not answer
    expect(() => call.accept(roster(AGENTS[0] as string, [a1.did, a2.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' })) // answered second: not its turn yet
    expect(() => call.accept(roster(AGENTS[1] as string, [a1.did, stranger.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(() => call.accept(roster(AGENTS[1] as string, [a2.did, a1.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(() => call.accept(roster(AGENTS[1] as string, [a1.did, a1.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(() => call.accept(roster(AGENTS[1] as string, [a2.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(() => call.accept(roster(AGENTS[1] as string, [a1.did, a2.did, a1.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
    expect(call.accept(roster(AGENTS[1] as string, [a1.did, a2.did]))).toEqual([a1.did, a2.did])
    expect(() => call.accept(roster(AGENTS[1] as string, [a1.did, a2.did]))).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
  })
})
