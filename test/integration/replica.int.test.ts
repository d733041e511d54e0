import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Block, Ledger } from '../../src/ledger/index.ts'
import { openReplica } from '../../src/ledger/replica.ts'
import type { Bus } from '../../src/transport/index.ts'
import { createMatrixBus } from '../../src/transport/matrix.ts'
import { newMatrixUser, synapseUrl, uniqueName } from './synapse.ts'

const vote = (n: number): Vote => ({ type: 'vote', federation: 'test', round: 1, proposal: String(n).padStart(64, 'c'), accept: true, score: 0.5, rationale: `vote ${n}` })

async function all (ledger: Ledger): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of ledger.blocks()) out.push(b)
  return out
}

async function until (check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!await check()) {
    if (Date.now() > end) throw new Error('timed out waiting for the copies')
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

describe('replicated ledger over a real Synapse', () => {
  it('two copies on two accounts in one room say hello, append concurrently and converge on the same blocks', async () => {
    const room = uniqueName('replica')
    const members = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey())]
    const users: Array<{ userId: string, accessToken: string }> = []
    const buses: Bus[] = []
    const ledgers: Ledger[] = []
    try {
      while (buses.length < members.length) {
        const user = await newMatrixUser('replica')
        users.push(user)
        const bus = await createMatrixBus({ baseUrl: synapseUrl, ...user, pollMs: 500, room: { public: true } }) // delivery, not who may join, is tested here
        buses.push(bus)
        ledgers.push(await openReplica({ dir: await mkdtemp(join(tmpdir(), 'conclave-replica-int-')), bus, room, difficulty: 4 }))
      }
      // Presence: each copy hears the other's hello before anything is anchored.
      const heard = buses.map(() => new Set<string>())
      await Promise.all(buses.map(async (bus, i) => bus.subscribe(room, m => { if (m.kind === 'hello') heard[i]?.add(m.name) })))
      await Promise.all(buses.map(async (bus, i) => { await bus.publish(room, { kind: 'hello', did: members[i]?.did as string, name: `agent-${i + 1}` }) }))
      await until(async () => heard.every(names => names.size === 2))

      const jwts = await Promise.all(Array.from({ length: 6 }, async (_, n) => (members[n % 2] as typeof members[0]).sign(vote(n))))
      await Promise.all(ledgers.map(async (ledger, c) => {
        for (const jwt of jwts.filter((_, n) => n % 2 === c)) await ledger.append(jwt)
      }))
      await until(async () => (await Promise.all(ledgers.map(all))).every(blocks => blocks.length === 6))
      const [a, b] = await Promise.all(ledgers.map(all))
      expect(new Set(a?.map(x => x.record))).toEqual(new Set(jwts))
      // One room timeline: both copies ingested in one order.
      expect(b).toEqual(a)
      for (const ledger of ledgers) expect(await ledger.verify()).toEqual({ ok: true, blocks: 6 })

      // What people in the room see of it: one short line per hello and per block.
      const http = async <T>(path: string): Promise<T> => (await fetch(`${synapseUrl}${path}`, { headers: { authorization: `Bearer ${users[0]?.accessToken as string}` } })).json() as Promise<T>
      const { room_id: roomId } = await http<{ room_id: string }>(`/_matrix/client/v3/directory/room/${encodeURIComponent(`#${room}:localhost`)}`)
      const { chunk } = await http<{ chunk: Array<{ type: string, content: { body?: string } }> }>(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`)
      const bodies = chunk.filter(e => e.type === 'm.room.message').map(e => e.content.body)
      expect(bodies.filter(body => body?.startsWith('👋'))).toEqual(expect.arrayContaining(['👋 agent-1 is listening', '👋 agent-2 is listening']))
      expect(bodies.filter(body => /^⛓ block [0-9a-f]{8}$/.test(body ?? ''))).toHaveLength(6)
    } finally {
      for (const ledger of ledgers) await ledger.close()
      for (const bus of buses) await bus.close()
    }
  })
})
