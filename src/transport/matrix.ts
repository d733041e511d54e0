import { randomUUID } from 'node:crypto'
import { createClient, Method, MatrixError, type MatrixClient } from 'matrix-js-sdk'
import type { Logger as SdkLogger } from 'matrix-js-sdk/lib/logger.js'
import { BackendUnavailableError, InvalidRecordError } from '../core/errors.ts'
import { readIfExists, writeAtomic } from '../core/files.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { peekRecord } from '../identity/index.ts'
import { BusMessage, RoomId, type Bus, type BusHandler, type Subscription } from './index.ts'

/**
 * Bus messages travel as `m.room.message` notices, so Element shows them, with the message
 * itself under `CONTENT_KEY`; a room message without it is a person talking to the agents.
 */
export const CONTENT_KEY = 'org.conclave.message'

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

interface SyncResponse {
  next_batch: string
  rooms?: { join?: Record<string, { timeline?: { events?: Array<{ type: string, event_id: string, sender: string, state_key?: string, content: unknown }> } }> }
}

/**
 * The Matrix bus (matrix-js-sdk's HTTP layer): a bus room is the Matrix room with alias
 * `#<room>:<server>` (created by whoever needs it first, joined by the others); messages
 * travel as `m.room.message` notices carrying the message under `org.conclave.message` and a
 * `body` line for people (Element shows it). A vote is sent into its proposal's thread
 * (m.thread) and adds a 👍/👎 reaction to the proposal. A person's own message in the room
 * reaches subscribers as a chat message (id = its event id), and an agent's answer to it goes
 * into that message's thread. A replicated ledger's blocks and the members' hellos are notices
 * too, with a one-line body (`⛓ block <id8>`, `👋 <name> is listening`). One /sync long-poll
 * loop per bus delivers new events, in timeline order, to the room's subscribers, each event
 * once (deduplicated by event id). The sync token is saved
 * after every batch, so after a restart — of this process or of the homeserver — the loop
 * resumes where it stopped: nothing is lost or seen twice. M_LIMIT_EXCEEDED is retried
 * after the server's retry_after_ms.
 */
export async function createMatrixBus (options: MatrixBusOptions): Promise<Bus> {
  const logger = options.logger ?? silentLogger
  // No request waits forever on a homeserver that accepts and never answers: a /sync long-poll
  // answers within pollMs, anything else within seconds; a timed-out request is retried as unreachable.
  const client = createClient({ baseUrl: options.baseUrl, userId: options.userId, accessToken: options.accessToken, logger: sdkLogger(logger), localTimeoutMs: (options.pollMs ?? 5000) + 30_000 })
  const server = options.userId.split(':').slice(1).join(':')
  const rooms = new Map<string, Promise<string>>() // bus room → Matrix room id
  const handlers = new Map<string, Set<BusHandler>>() // Matrix room id → handlers
  const seen = new Set<string>()
  const threads = new Map<string, string>() // proposal block → its Matrix event (the thread root)
  const outstanding = new Set<string>() // events I sent that have not come back through /sync yet
  let since = await readToken(options.syncTokenFile)
  let closed = false
  let delivery: Promise<void> = Promise.resolve()

  const roomFor = (room: string): Promise<string> => {
    if (!RoomId.safeParse(room).success) return Promise.reject(new InvalidRecordError(`"${room}" is not a room id`))
    let id = rooms.get(room)
    if (id === undefined) {
      id = ensureRoom(client, room, server)
      rooms.set(room, id)
      id.catch(() => rooms.delete(room))
    }
    return id
  }

  // A room's history from before I joined is not mine to replay: in a room I join, delivery
  // starts after my own join event. Rooms joined before a restart are live at once.
  const live = new Set<string>()
  if (since !== undefined) {
    const joined = await request<{ joined_rooms: string[] }>(() => client.http.authedRequest(Method.Get, '/joined_rooms'))
    for (const id of joined.joined_rooms) live.add(id)
  }

  // First sync: no history (a new subscriber starts now); later ones: everything since.
  if (since === undefined) {
    const first = await request<SyncResponse>(() => client.http.authedRequest(Method.Get, '/sync', { filter: JSON.stringify({ room: { timeline: { limit: 0 } } }), timeout: '0' }))
    since = first.next_batch
    await writeToken(options.syncTokenFile, since)
  }

  // Messages for rooms nobody has subscribed to yet (a restarted agent catching up before it
  // subscribes): held, and handed to the room's first subscriber.
  const pending = new Map<string, BusMessage[]>()
  let loop: Promise<void> | undefined
  const run = async (): Promise<void> => {
    while (!closed) {
      try {
        const batch = await request<SyncResponse>(() => client.http.authedRequest(Method.Get, '/sync', { since: since as string, timeout: String(options.pollMs ?? 5000) }))
        for (const [roomId, joined] of Object.entries(batch.rooms?.join ?? {})) {
          for (const event of joined.timeline?.events ?? []) {
            if (seen.has(event.event_id)) continue
            seen.add(event.event_id)
            outstanding.delete(event.event_id)
            if (!live.has(roomId)) {
              const mine = event.type === 'm.room.member' && event.state_key === options.userId && (event.content as { membership?: string }).membership === 'join'
              if (mine) live.add(roomId)
              continue
            }
            if (event.type !== 'm.room.message') continue
            const content = (event.content ?? {}) as Record<string, unknown>
            const parsed = CONTENT_KEY in content ? BusMessage.safeParse(content[CONTENT_KEY]) : fromPerson(event.event_id, event.sender, content)
            if (!parsed.success) { logger.warn('ignored a malformed conclave event', { eventId: event.event_id, sender: event.sender }); continue }
            if (parsed.data.kind === 'record' && peekRecord(parsed.data.jwt).record?.type === 'proposal') threads.set(parsed.data.block, event.event_id)
            const targets = [...handlers.get(roomId) ?? []]
            if (targets.length === 0) {
              const held = pending.get(roomId) ?? []
              if (held.length < 10_000) held.push(parsed.data)
              pending.set(roomId, held)
              continue
            }
            delivery = delivery.then(async () => {
              for (const h of targets) { try { await h(structuredClone(parsed.data)) } catch { /* the subscriber's problem */ } }
            })
          }
        }
        since = batch.next_batch
        await writeToken(options.syncTokenFile, since)
      } catch (err) {
        if (closed) return
        // The homeserver is down or restarting: keep the token and try again.
        logger.warn('matrix sync failed; retrying', { error: (err as Error).message })
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
  }

  return {
    async publish (room, message, opts = {}) {
      opts.signal?.throwIfAborted()
      if (closed) throw new InvalidRecordError('bus is closed')
      const parsed = BusMessage.safeParse(message)
      if (!RoomId.safeParse(room).success) throw new InvalidRecordError(`"${room}" is not a room id`)
      if (!parsed.success) throw new InvalidRecordError(`not a bus message: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      const roomId = await roomFor(room)
      const msg = parsed.data
      const record = msg.kind === 'record' ? peekRecord(msg.jwt).record : null
      // A vote goes into its proposal's thread, with a 👍/👎 on the proposal, so people in the room can follow.
      const root = record?.type === 'vote' ? threads.get(record.proposal) : undefined
      // An answer to a person goes into the thread of their message (Matrix event ids start with $).
      const replyTo = msg.kind === 'chat' && msg.inReplyTo?.startsWith('$') === true ? msg.inReplyTo : undefined
      const thread = root ?? replyTo
      const relation = thread === undefined ? {} : { 'm.relates_to': { rel_type: 'm.thread', event_id: thread, is_falling_back: true, 'm.in_reply_to': { event_id: thread } } }
      const content = { [CONTENT_KEY]: msg, msgtype: 'm.notice', body: describe(msg, record), ...relation }
      const txn = randomUUID() // the same transaction id on a retry: the server sends it once
      const sent = await request(() => client.http.authedRequest<{ event_id: string }>(Method.Put, `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, undefined, content as never), logger)
      if (!seen.has(sent.event_id) && handlers.get(roomId)?.size) outstanding.add(sent.event_id)
      if (msg.kind === 'record' && record?.type === 'proposal') threads.set(msg.block, sent.event_id)
      if (root !== undefined && record?.type === 'vote') {
        const reaction = randomUUID()
        await request(() => client.http.authedRequest(Method.Put, `/rooms/${encodeURIComponent(roomId)}/send/m.reaction/${reaction}`, undefined, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: record.accept ? '👍' : '👎' } } as never), logger)
      }
    },
    async subscribe (room, handler, opts = {}) {
      opts.signal?.throwIfAborted()
      const roomId = await roomFor(room)
      let set = handlers.get(roomId)
      if (set === undefined) handlers.set(roomId, set = new Set())
      const wrapped: BusHandler = m => handler(m)
      set.add(wrapped)
      const held = pending.get(roomId) ?? []
      pending.delete(roomId)
      if (held.length > 0) {
        delivery = delivery.then(async () => {
          for (const m of held) { try { await wrapped(structuredClone(m)) } catch { /* the subscriber's problem */ } }
        })
      }
      loop ??= run() // the sync loop starts with the first subscription
      return { unsubscribe: () => { set.delete(wrapped) } } satisfies Subscription
    },
    async settled () {
      for (let i = 0; outstanding.size > 0 && !closed && i < 1200; i++) await new Promise(resolve => setTimeout(resolve, 50))
      await delivery
    },
    async close () {
      closed = true
      client.http.abort()
      await loop?.catch(() => undefined)
      await delivery
      client.stopClient()
    }
  }
}

/** A person's message in the room, as a chat message to the agents (its event id is its id). */
function fromPerson (eventId: string, sender: string, content: Record<string, unknown>): ReturnType<typeof BusMessage.safeParse> {
  const body = typeof content.body === 'string' ? content.body.trim() : ''
  const relates = content['m.relates_to'] as { rel_type?: string, event_id?: string } | undefined
  return BusMessage.safeParse({ kind: 'chat', from: sender, body: body.slice(0, 8000), id: eventId, ...(relates?.rel_type === 'm.thread' && relates.event_id !== undefined ? { inReplyTo: relates.event_id } : {}) })
}

/** The line a person reads in Element for each protocol event. */
function describe (message: BusMessage, record: ReturnType<typeof peekRecord>['record']): string {
  switch (message.kind) {
    case 'chat': return message.body
    // Ledger plumbing, once per record and per member: one short line each, for people to skim past.
    case 'block': return `⛓ block ${message.block.id.slice(0, 8)}`
    case 'hello': return `👋 ${message.name} is listening`
  }
  if (record === null) return `record ${message.block}`
  switch (record.type) {
    case 'proposal': return `📦 proposal for round ${record.round}: Δw ${record.delta.cid} (${record.numSamples} samples) — block ${message.block}`
    case 'vote': return `${record.accept ? '👍 accept' : '👎 reject'}: ${record.rationale}`
    case 'decision': return `⚖️ round ${record.round}: proposal ${record.proposal.slice(0, 12)}… ${record.accepted ? 'accepted' : 'rejected'} (${record.accepts} of ${record.required} accepts needed)`
    case 'checkpoint': return `✅ checkpoint of round ${record.round}: model ${record.model.sha256.slice(0, 12)}…`
    default: return `${record.type} for round ${record.round}`
  }
}

/** The SDK logs every request; only its warnings and errors reach our logger. */
function sdkLogger (logger: Logger): SdkLogger {
  const quiet = (): void => {}
  const self: SdkLogger = {
    trace: quiet,
    debug: quiet,
    info: quiet,
    warn: (...msg: unknown[]) => { logger.warn(`matrix-js-sdk: ${msg.map(String).join(' ')}`) },
    error: (...msg: unknown[]) => { logger.warn(`matrix-js-sdk error: ${msg.map(String).join(' ')}`) },
    getChild: () => self
  }
  return self
}

/** The room behind alias `#room:server`: joined if it exists, created (and joined) if not. */
async function ensureRoom (client: MatrixClient, room: string, server: string): Promise<string> {
  const alias = `#${room}:${server}`
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const { room_id: id } = await request(() => client.getRoomIdForAlias(alias))
      await request(() => client.joinRoom(id))
      return id
    } catch (err) {
      // A room being created has its alias before its public join rule: wait for the rule.
      if (err instanceof MatrixError && err.errcode === 'M_FORBIDDEN' && attempt < 9) { await new Promise(resolve => setTimeout(resolve, 300)); continue }
      if (!(err instanceof MatrixError && err.errcode === 'M_NOT_FOUND')) throw err
    }
    try {
      const { room_id: id } = await request(() => client.createRoom({ room_alias_name: room, preset: 'public_chat' as never, name: `Conclave: ${room}` }))
      return id
    } catch (err) {
      // Someone created it meanwhile: join it. Synapse says M_ROOM_IN_USE when the alias was
      // there before; 409 M_UNKNOWN ("already exists") when a concurrent creation won the race.
      if (!(err instanceof MatrixError && (err.errcode === 'M_ROOM_IN_USE' || err.httpStatus === 409))) throw err
    }
  }
  throw new BackendUnavailableError(`could not create or join ${alias}`)
}

/** How long a request keeps retrying while the homeserver is unreachable (a restart). */
const UNREACHABLE_MS = 120_000

/**
 * Runs a homeserver request, waiting out M_LIMIT_EXCEEDED as the server asks, and retrying
 * while the homeserver cannot be reached or answers 502–504 (restarting), for up to two
 * minutes. A send keeps its transaction id across retries, so the server stores it once.
 */
async function request<T> (call: () => Promise<T>, logger: Logger = silentLogger, tries = 5): Promise<T> {
  const started = Date.now()
  for (let i = 0; ; i++) {
    try {
      return await call()
    } catch (err) {
      if (err instanceof MatrixError && err.errcode === 'M_LIMIT_EXCEEDED' && i < tries) {
        const wait = Number((err.data as { retry_after_ms?: number }).retry_after_ms ?? 1000)
        logger.warn('rate limited by the homeserver; waiting as asked', { retryAfterMs: wait })
        await new Promise(resolve => setTimeout(resolve, Math.min(wait, 30_000)))
        continue
      }
      const unreachable = err instanceof MatrixError ? [502, 503, 504].includes(err.httpStatus ?? 0) : (err as Error).name === 'ConnectionError'
      if (unreachable && Date.now() - started < UNREACHABLE_MS) {
        logger.warn('homeserver unreachable; retrying', { error: (err as Error).message })
        await new Promise(resolve => setTimeout(resolve, 500))
        continue
      }
      throw err
    }
  }
}

async function readToken (file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined
  return (await readIfExists(file))?.toString('utf8').trim() || undefined
}

async function writeToken (file: string | undefined, token: string): Promise<void> {
  if (file !== undefined) await writeAtomic(file, token)
}
