import { describe, expect, it } from 'vitest'
import { agentDriver, type ParticipantAgent } from '../../agents/index.ts'
import { audit } from '../../src/federation/audit.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { client, newMatrixUser, registrationSecret, synapseUrl, uniqueName, until, type RoomEvent } from './synapse.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { inject, tempDir } from '../federation/helpers.ts'

/**
 * A researcher votes from the room: 3 agents with their own accounts on a real Synapse, one
 * researcher, two strangers the researcher brought in. The researcher's 👍 on a proposal is
 * anchored as a human vote naming the reaction's event; the strangers' reactions and
 * commands change nothing.
 */
describe('researchers\' reactions on Matrix become human votes, checked against the room; strangers steer nothing', () => {
  it('a researcher\'s 👍 lands on the ledger (counted, as the charter says); a stranger\'s 👍, !federate and !pause are refused and change nothing', async () => {
    const [researcher, malloryAccount, eveAccount] = [await newMatrixUser('alice'), await newMatrixUser('mallory'), await newMatrixUser('eve')]
    const federation = uniqueName('fed')
    const config = parseRunConfig({
      federation, agents: 3, rounds: 1, seed: 5, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 4 },
      task: { kind: 'classify', trainLimit: 600, testLimit: 200 }, researchers: [researcher.userId], humanVotes: 'counted',
      bus: { kind: 'matrix', baseUrl: synapseUrl, registrationSecret: registrationSecret() }
    })
    const sim = await Simulation.create(config, { dir: await tempDir('conclave-human-'), driver: agentDriver() })
    try {
      await sim.charter()
      const [alice, mallory, eve] = [client(researcher), client(malloryAccount), client(eveAccount)]
      const alias = encodeURIComponent(`#${federation}:localhost`)
      const { room_id: roomId } = await alice.json<{ room_id: string }>('POST', `/_matrix/client/v3/join/${alias}`, {})
      for (const stranger of [malloryAccount, eveAccount]) await alice.json('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: stranger.userId })
      await mallory.json('POST', `/_matrix/client/v3/join/${alias}`, {})
      await eve.json('POST', `/_matrix/client/v3/join/${alias}`, {})

      const unconfirmed: Array<{ by: string, block: string, reason: string }> = []
      for (const p of sim.participants) p.on('conclave:human-vote:unconfirmed', e => { unconfirmed.push({ by: p.name, block: e.block, reason: e.reason }) })
      await sim.propose(1)
      const state = (): NonNullable<(typeof sim.participants)[number]['state']> => sim.participants[0]?.state as NonNullable<(typeof sim.participants)[number]['state']>
      const notices = (await alice.messages(roomId)).filter(e => String(e.content.body).startsWith('📦 '))
      expect(notices).toHaveLength(3)
      const blockOf = (e: RoomEvent): string => (e.content['org.conclave.message'] as { block: string }).block
      const [first, second] = notices as [RoomEvent, RoomEvent]
      const react = async (who: ReturnType<typeof client>, on: RoomEvent, key: string): Promise<string> =>
        (await who.json<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.reaction/r-${Date.now()}-${Math.random()}`, { 'm.relates_to': { rel_type: 'm.annotation', event_id: on.event_id, key } })).event_id
      const aliceReaction = await react(alice, first, '👍')
      const malloryReaction = await react(mallory, second, '👍')
      const federate = await mallory.send(roomId, { msgtype: 'm.text', body: '!federate task=classify rounds=2' })
      const pause = await eve.send(roomId, { msgtype: 'm.text', body: '!pause' })

      const humans = (): Array<{ researcher: string, accept: boolean, event: string, proposal: string }> =>
        [...state().proposals.values()].flatMap(p => [...p.humans.values()].map(h => ({ researcher: h.signed.record.researcher, accept: h.signed.record.accept, event: h.signed.record.event, proposal: h.signed.record.proposal })))
      const repliesTo = async (event: string): Promise<RoomEvent[]> => alice.relations(roomId, event, 'm.thread')
      await until(async () => humans().length >= 1 && (await repliesTo(federate)).length >= 1 && (await repliesTo(pause)).length >= 1, 120_000)
      await sim.settle()

      // The researcher's reaction, and only it, is on the ledger: its event id is the one the homeserver gave it.
      expect(humans()).toEqual([{ researcher: researcher.userId, accept: true, event: aliceReaction, proposal: blockOf(first) }])
      expect(sim.participants.map(p => [...p.state.proposals.values()].reduce((n, e) => n + e.humans.size, 0))).toEqual([1, 1, 1])
      const reaction = await alice.json<RoomEvent>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(aliceReaction)}`)
      expect({ sender: reaction.sender, relates: reaction.content['m.relates_to'] }).toEqual({ sender: researcher.userId, relates: { rel_type: 'm.annotation', event_id: first.event_id, key: '👍' } })

      // The strangers are refused, and nothing changed: nobody paused, no second charter.
      expect((await repliesTo(federate)).map(e => String(e.content.body))).toEqual([expect.stringMatching(/^agent-1: sorry, I take !federate only from this federation's researchers/)])
      expect((await repliesTo(pause)).map(e => String(e.content.body))).toEqual([expect.stringMatching(/^agent-1: sorry, I take !pause only from this federation's researchers/)])
      expect((sim.drivers as ParticipantAgent[]).map(a => a.paused)).toEqual([false, false, false])

      // An agent forges the researcher's 👍 on the second proposal, citing the stranger's reaction: the ledger takes
      // it (a member anchored it for a researcher the charter names), and every agent, asking the room, names it.
      // One member's word makes no vote (humanWitnesses 2, the default under counted): it counts for nothing.
      const forged = await inject(sim, (sim.participants[1] as Participant).identity, { type: 'human-vote', federation, round: 1, proposal: blockOf(second), accept: true, researcher: researcher.userId, event: malloryReaction })
      await until(() => unconfirmed.length === 3)
      expect(unconfirmed.sort((a, b) => a.by.localeCompare(b.by))).toEqual(['agent-1', 'agent-2', 'agent-3'].map(by => ({ by, block: forged, reason: `reaction ${malloryReaction} was sent by ${malloryAccount.userId}, not ${researcher.userId}` })))

      const report = await sim.closeRound(1)
      expect(report.round).toBe(1)
      // Counted: the decision on the first proposal names the human vote's block among its votes.
      const decided = state().proposals.get(blockOf(first))
      const humanBlock = [...decided?.humans.values() ?? []][0]?.block
      expect(decided?.decision?.record.votes).toContain(humanBlock)
      expect(state().proposals.get(blockOf(second))?.humans.size).toBe(0)
      const audited = await audit(sim.ledger, sim.store)
      // The audit, with no room to ask, cannot tell a forged vote from a real one; it counts the one two members anchored.
      expect(audited).toMatchObject({ ok: true, humanVotes: 1, humanVotesCounted: true, rejected: [] })
      // It names the forged one, uncounted, with its one witness: the room check above says whose reaction it cites.
      expect(audited.humanVotesUncounted).toEqual([{ block: forged, event: malloryReaction, proposal: blockOf(second), researcher: researcher.userId, accept: true, witnesses: [(sim.participants[1] as Participant).identity.did] }])
      let charters = 0
      for await (const b of sim.ledger.blocks()) if (peekRecord(b.record).record?.type === 'charter') charters++
      expect(charters).toBe(1)
    } finally {
      await sim.close()
    }
  }, 300_000)
})
