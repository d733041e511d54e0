import { afterEach, describe, expect, it, vi } from 'vitest'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createIdentity } from '../../src/identity/index.ts'
import type { Bus, BusMessage } from '../../src/transport/index.ts'
import { CONTENT_KEY } from '../../src/transport/matrix/render.ts'
import type { TimelineEvent } from '../../src/transport/matrix/sync.ts'
import type { FakeRoom } from './fake-homeserver.ts'

// A homeserver whose first /sync batch after a bus starts holds the room's timeline, and which hands out any event of it.
const room: FakeRoom = { user: '@fed.agent-1:x', timeline: [], events: new Map() }
vi.mock('../../src/transport/matrix/requests.ts', async (original) => {
  const real = await original<typeof import('../../src/transport/matrix/requests.ts')>()
  const { fakeMatrixClient } = await import('./fake-homeserver.ts')
  return { ...real, matrixClient: () => fakeMatrixClient(room) }
})

const message = (id: string, sender: string, carried: BusMessage): TimelineEvent => ({ type: 'm.room.message', event_id: id, sender, content: { msgtype: 'm.notice', body: '📦', [CONTENT_KEY]: carried } })
const thumbs = (id: string, on: string): TimelineEvent => ({ type: 'm.reaction', event_id: id, sender: '@alice:x', content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: on, key: '👍' } } })

describe('a researcher\'s reaction on a proposal, in a room where others front-run its notice', () => {
  let bus: Bus | undefined
  afterEach(async () => { await bus?.close(); bus = undefined })

  // Found red-teaming: on replicas the proposer's block comes first and its own notice only once
  // the block is stored; a member's account (a hostile member, or a lobby agent left off the roster)
  // posted a copy of the notice at once, every bus but the proposer's took the copy for the
  // proposal's thread, and a researcher's 👍 on the real notice reached no member: her vote never counted.
  it('only the proposer\'s own notice, carrying the record its block anchors, takes reactions: a copy by another account, or another proposal under its block, takes none', async () => {
    const proposer = await createIdentity(randomSecretKey())
    const hostile = await createIdentity(randomSecretKey())
    const accounts = new Map([[proposer.did, '@fed.agent-2:x'], [hostile.did, '@fed.agent-3:x']])
    const cid = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const update = { type: 'proposal', federation: 'fed', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 } as const
    const block = 'b'.repeat(64)
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign(update) }
    const anchoring: BusMessage = { kind: 'block', block: { id: block, parents: [], record: proposal.jwt, time: 1, pow: 0 } }
    // agent-3 saw the block go by: a copy of its notice, and its own proposal under its block, both from its own account.
    const own = message('$proposal', '@fed.agent-2:x', proposal)
    room.timeline = [
      message('$block', '@fed.agent-2:x', anchoring),
      message('$copy', '@fed.agent-3:x', proposal),
      message('$other', '@fed.agent-3:x', { kind: 'record', block, jwt: await hostile.sign(update) }),
      own,
      thumbs('$r-copy', '$copy'), thumbs('$r-other', '$other'), thumbs('$r1', '$proposal')
    ]
    for (const e of room.timeline) room.events.set(e.event_id, e)

    const { createMatrixBus } = await import('../../src/transport/matrix.ts')
    bus = await createMatrixBus({ baseUrl: 'http://x', userId: '@fed.agent-1:x', accessToken: 't', pollMs: 10, accountOf: did => accounts.get(did) })
    const heard: BusMessage[] = []
    await bus.subscribe('fed', m => { heard.push(m) }, { kinds: ['reaction'] })
    await vi.waitFor(() => { expect(heard).toHaveLength(1) })
    await bus.settled?.()

    expect(heard).toEqual([{ kind: 'reaction', from: '@alice:x', key: '👍', event: '$r1', proposal: block }])
    // The room's word on each reaction agrees: only the one on the real notice is on the proposal.
    expect(await bus.reaction?.('fed', '$r1')).toEqual({ from: '@alice:x', key: '👍', proposal: block })
    expect(await bus.reaction?.('fed', '$r-copy')).toEqual({ from: '@alice:x', key: '👍', proposal: undefined })
    expect(await bus.reaction?.('fed', '$r-other')).toEqual({ from: '@alice:x', key: '👍', proposal: undefined })
  })
})
