import { MatrixError } from 'matrix-js-sdk'
import type { TimelineEvent } from '../../src/transport/matrix/sync.ts'

/** What a fake homeserver holds: whose token it is, the first /sync batch's `timeline`, every event it hands out, and what a send does (absent: refused). */
export interface FakeRoom {
  user: string
  timeline: TimelineEvent[]
  events: Map<string, TimelineEvent>
  send?: (body: Record<string, unknown>) => { event_id: string }
}

/**
 * A matrix-js-sdk client for a bus in one room `!r:x`: its first /sync batch after a bus starts
 * holds `room.timeline`, and it hands out any event of `room.events` (read when called, so a
 * test sets them after the mock is made).
 */
export function fakeMatrixClient (room: FakeRoom): unknown {
  return {
    getRoomIdForAlias: async () => ({ room_id: '!r:x' }),
    joinRoom: async () => ({}),
    setDisplayName: async () => ({}),
    stopClient: () => {},
    http: {
      abort: () => {},
      authedRequest: async (method: string, path: string, query: { since?: string } | undefined, body: Record<string, unknown>) => {
        if (path === '/account/whoami') return { user_id: room.user }
        if (path === '/sync') {
          if (query?.since === undefined) return { next_batch: 't1' }
          if (query.since !== 't1') { await new Promise(resolve => setTimeout(resolve, 20)); return { next_batch: query.since } }
          return { next_batch: 't2', rooms: { join: { '!r:x': { state: { events: [{ type: 'm.room.member', event_id: '$join', sender: room.user, state_key: room.user, content: { membership: 'join' } }] }, timeline: { events: room.timeline } } } } }
        }
        const asked = /^\/rooms\/[^/]+\/event\/(.+)$/.exec(path)
        if (asked !== null) {
          const found = room.events.get(decodeURIComponent(asked[1] as string))
          if (found === undefined) throw new MatrixError({ errcode: 'M_NOT_FOUND', error: 'no such event' }, 404)
          return found
        }
        if (method === 'PUT' && path.includes('/send/') && room.send !== undefined) return room.send(body)
        throw new Error(`unexpected ${method} ${path}`)
      }
    }
  }
}
