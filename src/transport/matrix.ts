import { randomUUID } from 'node:crypto'
import { MatrixError, Method } from 'matrix-js-sdk'
import { InvalidRecordError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { BusMessage, RoomId, type Bus } from './index.ts'
import { fromEvent, notice, Threads } from './matrix/render.ts'
import { matrixClient, request } from './matrix/requests.ts'
import { roomDirectory } from './matrix/rooms.ts'
import { Subscribers } from './matrix/subscribers.ts'
import { Sync, type TimelineEvent } from './matrix/sync.ts'

export { CONTENT_KEY } from './matrix/render.ts'

export interface MatrixBusOptions {
  /** Homeserver base URL, e.g. http://127.0.0.1:8008 */
  baseUrl: string
  userId: string
  accessToken: string
  /** Where the sync token is kept, so a restart resumes after the last event it saw. */
  syncTokenFile?: string
  /** Long-poll timeout of one /sync, in ms. @default 5000 */
  pollMs?: number
  logger?: Logger
}

/**
 * Agents sharing one account (as in `conclave run`) vote alike on a proposal: the homeserver
 * keeps one reaction per account and key, and refuses the second. The first stands for both.
 */
function reactedAlready (err: unknown): void {
  if (!(err instanceof MatrixError && err.errcode === 'M_DUPLICATE_ANNOTATION')) throw err
}

/** How long `settled` waits for my messages to come back through /sync. */
const SETTLE_MS = 60_000

/**
 * The Matrix bus (matrix-js-sdk's HTTP layer): a bus room is the Matrix room with alias
 * `#<room>:<server>` (matrix/rooms.ts); messages travel as notices people can read in
 * Element, votes threaded under their proposals (matrix/render.ts); one /sync loop per bus
 * delivers new events in timeline order, each once, and resumes after a restart
 * (matrix/sync.ts); each room's subscribers are served in order (matrix/subscribers.ts);
 * requests wait out rate limits and homeserver restarts (matrix/requests.ts). A person's
 * own message in the room reaches subscribers as a chat message. `close()` ends the loop
 * and every wait.
 */
export async function createMatrixBus (options: MatrixBusOptions): Promise<Bus> {
  const logger = options.logger ?? silentLogger
  const pollMs = options.pollMs ?? 5000
  const client = matrixClient({ ...options, pollMs, logger })
  const closing = new AbortController()
  const sync = await Sync.open(client, { userId: options.userId, tokenFile: options.syncTokenFile, pollMs, logger, signal: closing.signal })
  const roomFor = roomDirectory(client, options.userId.split(':').slice(1).join(':'), closing.signal)
  const threads = new Threads()
  const subscribers = new Subscribers()

  const receive = (roomId: string, event: TimelineEvent): void => {
    if (event.type !== 'm.room.message') return
    const parsed = fromEvent(event)
    if (!parsed.success) {
      logger.warn('ignored a malformed conclave event', { eventId: event.event_id, sender: event.sender })
      return
    }
    threads.note(parsed.data, event.event_id)
    subscribers.deliver(roomId, parsed.data)
  }

  return {
    async publish (room, message, opts = {}) {
      opts.signal?.throwIfAborted()
      if (closing.signal.aborted) throw new InvalidRecordError('bus is closed')
      const parsed = BusMessage.safeParse(message)
      if (!RoomId.safeParse(room).success) throw new InvalidRecordError(`"${room}" is not a room id`)
      if (!parsed.success) throw new InvalidRecordError(`not a bus message: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      const signal = opts.signal === undefined ? closing.signal : AbortSignal.any([closing.signal, opts.signal])
      const roomId = await roomFor(room)
      const { content, reaction } = notice(parsed.data, threads)
      const send = async (type: string, body: Record<string, unknown>): Promise<string> => {
        const txn = randomUUID() // the same transaction id on a retry: the server stores it once
        const path = `/rooms/${encodeURIComponent(roomId)}/send/${type}/${txn}`
        return (await request(() => client.http.authedRequest<{ event_id: string }>(Method.Put, path, undefined, body as never, { abortSignal: signal }), { logger, signal })).event_id
      }
      const sent = await send('m.room.message', content)
      if (subscribers.listening(roomId)) sync.sent(sent)
      threads.note(parsed.data, sent)
      if (reaction !== undefined) await send('m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: reaction.root, key: reaction.key } }).catch(reactedAlready)
    },
    async subscribe (room, handler, opts = {}) {
      opts.signal?.throwIfAborted()
      const subscription = subscribers.add(await roomFor(room), handler)
      sync.start(receive) // the sync loop starts with the first subscription
      return subscription
    },
    async settled () {
      await sync.echoed(AbortSignal.any([closing.signal, AbortSignal.timeout(SETTLE_MS)]))
      await subscribers.idle()
    },
    async close () {
      closing.abort()
      client.http.abort()
      await sync.stopped()
      await subscribers.idle()
      client.stopClient()
    }
  }
}
