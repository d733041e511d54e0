import { MatrixError } from 'matrix-js-sdk'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus, BusMessage } from '../../src/transport/index.ts'
import type { TimelineEvent } from '../../src/transport/matrix/sync.ts'
import type { FakeRoom } from './fake-homeserver.ts'

// A homeserver with Synapse's rule for threads: none may start at an event that is in a thread
// or related to another (`event_includes_relation`). Its first /sync batch after a bus starts holds `room.timeline`.
const sent: Array<Record<string, unknown>> = []
const room: FakeRoom = {
  user: '@agent-1:x',
  timeline: [],
  events: new Map(),
  send: body => {
    const relates = body['m.relates_to'] as { rel_type?: string, event_id?: string } | undefined
    const parent = relates?.rel_type === 'm.thread' ? room.events.get(relates.event_id ?? '') : undefined
    if ((parent?.content as { 'm.relates_to'?: unknown } | undefined)?.['m.relates_to'] !== undefined) throw new MatrixError({ errcode: 'M_UNKNOWN', error: 'Cannot start threads from an event with a relation' }, 400)
    sent.push(body)
    return { event_id: `$sent${sent.length}` }
  }
}
vi.mock('../../src/transport/matrix/requests.ts', async (original) => {
  const real = await original<typeof import('../../src/transport/matrix/requests.ts')>()
  const { fakeMatrixClient } = await import('./fake-homeserver.ts')
  return { ...real, matrixClient: () => fakeMatrixClient(room) }
})

const question: TimelineEvent = { type: 'm.room.message', event_id: '$q', sender: '@alice:x', content: { msgtype: 'm.text', body: '@agent-1 why?' } }
const edit: TimelineEvent = { type: 'm.room.message', event_id: '$edit', sender: '@alice:x', content: { msgtype: 'm.text', body: '* @agent-1 why is the loss up?', 'm.new_content': { body: '@agent-1 why is the loss up?' }, 'm.relates_to': { rel_type: 'm.replace', event_id: '$q' } } }
const inThread: TimelineEvent = { type: 'm.room.message', event_id: '$t', sender: '@alice:x', content: { msgtype: 'm.text', body: '@agent-1 and this one?', 'm.relates_to': { rel_type: 'm.thread', event_id: '$proposal' } } }
for (const e of [question, edit, inThread]) room.events.set(e.event_id, e)

describe('answers in a Matrix room, on a homeserver that refuses a thread at an event in one or related to another', () => {
  let bus: Bus | undefined
  afterEach(async () => { await bus?.close(); bus = undefined })
  const open = async (): Promise<Bus> => {
    const { createMatrixBus } = await import('../../src/transport/matrix.ts')
    return (bus = await createMatrixBus({ baseUrl: 'http://x', userId: '@agent-1:x', accessToken: 't', pollMs: 10 }))
  }
  const answer = (to: string): BusMessage => ({ kind: 'chat', from: 'agent-1', body: 'agent-1: because', inReplyTo: to, id: `a-${to}` })

  it('answers a question in its own thread, one asked in a thread there, and one related to another event as a plain reply: none is refused', async () => {
    const bus = await open()
    for (const to of ['$q', '$t', '$edit']) await bus.publish('fed', answer(to))
    expect(sent.map(s => s['m.relates_to'])).toEqual([
      { rel_type: 'm.thread', event_id: '$q', is_falling_back: true, 'm.in_reply_to': { event_id: '$q' } },
      { rel_type: 'm.thread', event_id: '$proposal', is_falling_back: false, 'm.in_reply_to': { event_id: '$t' } },
      { 'm.in_reply_to': { event_id: '$edit' } }
    ])
  })

  // Found red-teaming: Element sends an edit as a message starting "* " with the mention in it; it was answered again, into a thread the homeserver refused.
  it('takes an edit for no new message: only the question it edits is heard', async () => {
    room.timeline = [question, edit]
    const bus = await open()
    const heard: string[] = []
    await bus.subscribe('fed', m => { if (m.kind === 'chat') heard.push(m.id) })
    await vi.waitFor(() => { expect(heard).toEqual(['$q']) })
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(heard).toEqual(['$q'])
  })
})
