import { randomUUID } from 'node:crypto'
import { Method } from 'matrix-js-sdk'
import { ConfigError, InvalidRecordError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { serverOf } from '../core/records.ts'
import { BusMessage, RoomId, type Bus } from './index.ts'
import { type AccountOf, answeredBy, deliveryOf, type AnswerPlace, fromEvent, notice, reactionOf, Threads, type NameOf } from './matrix/render.ts'
import { matrixClient, request } from './matrix/requests.ts'
import { roomDirectory, type RoomSettings } from './matrix/rooms.ts'
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
  /** The member this account is (`agent-2`): its display name in the room. */
  name?: string
  /** Members' names for their DIDs, for the notices people read. */
  nameOf?: NameOf
  /** How a room this bus creates is set up. @default invite-only, nobody invited */
  room?: RoomSettings
  /** The other buses of this process: a message one sends has settled once each of them has seen it. */
  peers?: EchoGroup
  /** The account each member's DID talks as (may fill in later): only a proposer's own notice of its proposal roots its vote thread and takes reactions (absent: anyone's). */
  accountOf?: AccountOf
}

/**
 * The buses one process runs (`conclave run`: each agent its own account and /sync): each
 * notes what any of them sends, so `settled` waits until every one has seen it come back.
 */
export class EchoGroup {
  readonly #members = new Set<(roomId: string, eventId: string) => void>()

  join (expect: (roomId: string, eventId: string) => void): void {
    this.#members.add(expect)
  }

  sent (roomId: string, eventId: string): void {
    for (const expect of this.#members) expect(roomId, eventId)
  }
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
 * own message in the room reaches subscribers as a chat message, and every chat message
 * comes from its Matrix sender. A room the bus creates is invite-only unless `room` says
 * otherwise. One bus is one account: `conclave run` gives each agent its own (members.ts).
 * `close()` ends the loop and every wait.
 */
export async function createMatrixBus (options: MatrixBusOptions): Promise<Bus> {
  const logger = options.logger ?? silentLogger
  const pollMs = options.pollMs ?? 5000
  const client = matrixClient({ ...options, pollMs, logger })
  const closing = new AbortController()
  // The bus is the token's account: another id here (another case, a delegated host) would never
  // count its own join, so it would hear nothing, and would judge room times by the wrong server.
  const { user_id: account } = await request(() => client.http.authedRequest<{ user_id: string }>(Method.Get, '/account/whoami'), { logger, signal: closing.signal })
  if (account !== options.userId) throw new ConfigError(`the access token is ${account}'s, not ${options.userId}'s: set the bus's userId to ${account}`)
  const subscribers = new Subscribers()
  const sync = await Sync.open(client, { userId: options.userId, tokenFile: options.syncTokenFile, handled: async () => subscribers.handled(), pollMs, logger, signal: closing.signal })
  const server = serverOf(options.userId)
  const roomFor = roomDirectory(client, server, options.room ?? {}, closing.signal)
  const threads = new Threads({ accountOf: options.accountOf })
  const peers = options.peers ?? new EchoGroup()
  peers.join((roomId, eventId) => { if (subscribers.listening(roomId)) sync.sent(eventId) })
  if (options.name !== undefined) {
    const name = options.name
    await request(() => client.setDisplayName(name), { logger, signal: closing.signal })
  }

  /**
   * The thread the event a message answers is in (a question, a `!federate`), asked of the
   * homeserver (answers are few: the chat gate bounds them), so the answer goes there: a thread
   * cannot start at an event in one. Unknown where the homeserver does not say: the answer starts a thread at it.
   */
  const threadOfAnswered = async (roomId: string, message: BusMessage, signal: AbortSignal): Promise<AnswerPlace | undefined> => {
    const answered = answeredBy(message)
    if (answered === undefined) return undefined
    const path = `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(answered)}`
    const event = await request(() => client.http.authedRequest<TimelineEvent>(Method.Get, path, undefined, undefined, { abortSignal: signal }), { logger, signal })
      .catch((err: unknown) => { if (signal.aborted) throw err; return undefined })
    const relates = relationOf(event?.content)
    if (relates?.rel_type === 'm.thread' && typeof relates.event_id === 'string') return { thread: relates.event_id }
    return typeof relates?.rel_type === 'string' ? { related: true } : undefined
  }

  const receive = (roomId: string, event: TimelineEvent): void => {
    if (event.type === 'm.reaction') {
      const reaction = reactionOf(event, threads)
      if (reaction !== undefined) subscribers.deliver(roomId, reaction, deliveryOf(event, server))
      return
    }
    if (event.type !== 'm.room.message') return
    // An edit is not a new message: the agents answered the message it edits (found red-teaming: an answer to an edit was refused).
    if (relationOf(event.content)?.rel_type === 'm.replace') return
    const parsed = fromEvent(event)
    if (!parsed.success) {
      logger.warn('ignored a malformed conclave event', { eventId: event.event_id, sender: event.sender })
      return
    }
    threads.note(parsed.data, event.event_id, { sender: event.sender, threaded: relationOf(event.content) !== undefined })
    subscribers.deliver(roomId, parsed.data, deliveryOf(event, server))
  }

  return {
    sender: options.userId,
    async publish (room, message, opts = {}) {
      opts.signal?.throwIfAborted()
      if (closing.signal.aborted) throw new InvalidRecordError('bus is closed')
      const parsed = BusMessage.safeParse(message)
      if (!RoomId.safeParse(room).success) throw new InvalidRecordError(`"${room}" is not a room id`)
      if (!parsed.success) throw new InvalidRecordError(`not a bus message: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      if (parsed.data.kind === 'reaction') throw new InvalidRecordError('a reaction comes from the room, as its sender made it: nobody publishes one')
      const signal = opts.signal === undefined ? closing.signal : AbortSignal.any([closing.signal, opts.signal])
      const roomId = await roomFor(room)
      const { content, reaction } = notice(parsed.data, threads, options.nameOf, await threadOfAnswered(roomId, parsed.data, signal))
      const send = async (type: string, body: Record<string, unknown>): Promise<string> => {
        const txn = randomUUID() // the same transaction id on a retry: the server stores it once
        const path = `/rooms/${encodeURIComponent(roomId)}/send/${type}/${txn}`
        return (await request(() => client.http.authedRequest<{ event_id: string }>(Method.Put, path, undefined, body as never, { abortSignal: signal }), { logger, signal })).event_id
      }
      const sent = await send('m.room.message', content)
      peers.sent(roomId, sent)
      threads.note(parsed.data, sent, { sender: options.userId, threaded: relationOf(content) !== undefined })
      if (reaction !== undefined) {
        // The reaction only shows the vote, which the notice above carries: failing to show it must
        // not fail the vote (a vote whose announce failed was once retried by every agent's model).
        await send('m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: reaction.root, key: reaction.key } }).catch((err: unknown) => {
          if (signal.aborted) throw err
          logger.warn('could not show a vote as a reaction on its proposal', { error: (err as Error).message })
        })
      }
    },
    async subscribe (room, handler, opts = {}) {
      opts.signal?.throwIfAborted()
      const subscription = subscribers.add(await roomFor(room), handler, opts.kinds)
      sync.start(receive) // the sync loop starts with the first subscription
      return subscription
    },
    async reaction (room, eventId, opts = {}) {
      const signal = opts.signal === undefined ? closing.signal : AbortSignal.any([closing.signal, opts.signal])
      const roomId = await roomFor(room)
      const event = async (id: string): Promise<TimelineEvent | undefined> => {
        const path = `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(id)}`
        try {
          return await request(() => client.http.authedRequest<TimelineEvent>(Method.Get, path, undefined, undefined, { abortSignal: signal }), { logger, signal })
        } catch (err) {
          if ((err as { httpStatus?: number }).httpStatus === 404) return undefined
          throw err
        }
      }
      const found = await event(eventId)
      if (found?.type !== 'm.reaction') return undefined
      const relates = (found.content as { 'm.relates_to'?: { rel_type?: unknown, event_id?: unknown, key?: unknown } })['m.relates_to']
      if (relates?.rel_type !== 'm.annotation' || typeof relates.event_id !== 'string' || typeof relates.key !== 'string') return undefined
      // The notice it reacts to names its proposal; one I have not seen is asked for. A copy of it by another account names none.
      let proposal = threads.proposalAt(relates.event_id)
      if (proposal === undefined) {
        const target = await event(relates.event_id)
        const carried = target?.type === 'm.room.message' ? fromEvent(target) : undefined
        if (carried?.success === true && target !== undefined && relationOf(target.content) === undefined) proposal = threads.proposalOf(carried.data, target.sender)
      }
      return { from: found.sender, key: relates.key, proposal }
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

/** An event's relation to another (a thread, a reply, an edit), if its content has one. */
function relationOf (content: unknown): { rel_type?: unknown, event_id?: unknown } | undefined {
  const relates = (content as { 'm.relates_to'?: unknown } | null | undefined)?.['m.relates_to']
  return typeof relates === 'object' && relates !== null ? relates as { rel_type?: unknown, event_id?: unknown } : undefined
}
