import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { agentDriver } from '../../agents/index.ts'
import { audit } from '../../src/federation/audit.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { newMatrixUser, registrationSecret, synapseUrl, uniqueName } from './synapse.ts'

const baseUrl = synapseUrl

/**
 * A federation whose messages travel through a real Synapse room, and a researcher in that
 * room (a second Matrix account, as in Element) asking an agent why it voted as it did.
 */
describe('a researcher in the federation\'s Matrix room', () => {
  it('sees the records as notices and gets an agent\'s answer, from its signed vote, in the thread of the question', async () => {
    const researcher = await newMatrixUser('alice')
    const federation = uniqueName('fed')
    const config = parseRunConfig({
      federation, agents: 3, rounds: 1, seed: 5, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 4 },
      task: { kind: 'classify', trainLimit: 600, testLimit: 200 }, attacks: [{ kind: 'sign-flip', agent: 3, scale: 5 }],
      researchers: [researcher.userId],
      bus: { kind: 'matrix', baseUrl, registrationSecret: registrationSecret() }
    })
    const sim = await Simulation.create(config, { dir: await mkdtemp(join(tmpdir(), 'conclave-matrix-fed-')), driver: agentDriver() })
    const http = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await fetch(`${baseUrl}${path}`, { method, headers: { authorization: `Bearer ${researcher.accessToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
      expect(r.ok).toBe(true)
      return r.json() as Promise<T>
    }
    try {
      await sim.charter()
      await sim.round(1)
      const { room_id: roomId } = await http<{ room_id: string }>('POST', `/_matrix/client/v3/join/${encodeURIComponent(`#${federation}:localhost`)}`, {})
      const { event_id: question } = await http<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/q-${Date.now()}`,
        { msgtype: 'm.text', body: "@agent-2 why did you reject agent-3's update in round 1?" })

      let answers: Array<{ sender: string, content: { body: string } }> = []
      for (let i = 0; i < 60 && answers.length === 0; i++) {
        await new Promise(resolve => setTimeout(resolve, 500))
        answers = (await http<{ chunk: typeof answers }>('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(question)}/m.thread`)).chunk
      }
      const vote = [...(sim.participants[1]?.state.proposals.values() ?? [])].find(e => e.signed.issuer === sim.participants[2]?.did)?.votes.get(sim.participants[1]?.did as string)?.signed.record
      expect(vote?.accept).toBe(false)
      expect(answers).toHaveLength(1)
      expect(answers[0]?.content.body).toContain("I voted to reject agent-3's round 1 update")
      expect(answers[0]?.content.body).toContain(vote?.rationale)

      // the federation itself is readable in the room: proposals and decisions as notices
      const { chunk } = await http<{ chunk: Array<{ type: string, event_id: string, content: { body?: string } }> }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`)
      const bodies = chunk.map(e => e.content.body ?? '')
      expect(bodies.filter(b => /^📦 agent-\d proposes its round 1 update/.test(b))).toHaveLength(3)
      expect(bodies.some(b => b.startsWith('⚖️ round 1:'))).toBe(true)

      // Asked in the proposal's own thread, the answer comes in that thread, as a reply to the question (found
      // red-teaming: the answer started a thread at the question, which the homeserver refused, and was lost).
      const notice = chunk.find(e => (e.content.body ?? '').startsWith('📦 agent-3 proposes')) as { event_id: string }
      const { event_id: inThread } = await http<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/q2-${Date.now()}`, {
        msgtype: 'm.text', body: '@agent-2 why did you reject this update?', 'm.relates_to': { rel_type: 'm.thread', event_id: notice.event_id, is_falling_back: true, 'm.in_reply_to': { event_id: notice.event_id } }
      })
      let replies: Array<{ sender: string, content: { body: string, 'm.relates_to'?: { 'm.in_reply_to'?: { event_id: string } } } }> = []
      for (let i = 0; i < 60 && replies.length === 0; i++) {
        await new Promise(resolve => setTimeout(resolve, 500))
        replies = (await http<{ chunk: typeof replies }>('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(notice.event_id)}/m.thread?limit=100`)).chunk
          .filter(e => e.content['m.relates_to']?.['m.in_reply_to']?.event_id === inThread)
      }
      expect(replies.map(r => r.content.body)).toEqual([expect.stringMatching(/^agent-2: /)])
      expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
    } finally {
      await sim.close()
    }
  }, 180_000)
})
