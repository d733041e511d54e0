import { once } from 'node:events'
import { setTimeout as pause } from 'node:timers/promises'
import { Method, type MatrixClient } from 'matrix-js-sdk'
import { BoundedMap } from '../../core/bounded-map.ts'
import { DamagedFileError } from '../../core/errors.ts'
import { appendSynced, readOwnFile, writeAtomic } from '../../core/files.ts'
import type { Logger } from '../../core/logger.ts'
import { request, RETRY_MS } from './requests.ts'

export interface TimelineEvent { type: string, event_id: string, sender: string, state_key?: string, content: unknown, origin_server_ts?: unknown, unsigned?: { prev_content?: { membership?: unknown } } }

interface SyncResponse {
  next_batch: string
  rooms?: { join?: Record<string, { state?: { events?: TimelineEvent[] }, timeline?: { events?: TimelineEvent[], limited?: boolean, prev_batch?: string } }> }
}

/** A page of a room's history, oldest first (dir=f), and where the next page starts. */
interface MessagesResponse { chunk?: TimelineEvent[], end?: string }

/**
 * Events one /sync may hand over per room. Synapse's default is 10: a busier batch comes
 * `limited`, its earlier events left out (and a new room's own creation pushes my join out of
 * the timeline into its state).
 */
const TIMELINE_LIMIT = 1000
const TIMELINE_FILTER = JSON.stringify({ room: { timeline: { limit: TIMELINE_LIMIT } } })

/**
 * Events a batch left out (`limited`) that are fetched from the room's history, at most, and
 * their bytes (as JSON): a flood of more than the timeline limit must not hide a researcher's
 * command or reaction sent before it, nor may it hold unbounded memory (the earliest are kept,
 * as Subscribers keeps them).
 */
const GAP_KEPT = 10_000
const GAP_BYTES = 32 * 1024 * 1024

/**
 * Event ids remembered to deliver each event once: more than one /sync batch and the gap it
 * left out hold together, which is where repeats come from (the notes of handled events
 * reloaded after a kill fill it too; found red-teaming: at 10,000 a batch's earliest came again).
 */
const SEEN_KEPT = 2 * (GAP_KEPT + TIMELINE_LIMIT)

/** Beside the token file: the ids of the events handled since the token was saved, so a restart does not hand them over again. */
const HANDLED_SUFFIX = '.handled'

/** Most bytes a sync token may take (Synapse's are ~60). */
const MAX_TOKEN_BYTES = 64 * 1024
/** Most bytes the notes of handled events may take: an id a line (~50 bytes), cleared at each token saved; far more than a batch and its gap hold. */
const MAX_HANDLED_BYTES = 64 << 20

export interface SyncOptions {
  userId: string
  /** Where the sync token is kept, so a restart resumes after the last event it saw; beside it, `${tokenFile}.handled`. */
  tokenFile?: string
  /**
   * Resolves once what was delivered so far has been handled (subscribers.ts `handled`): a
   * batch's token is saved only then, and each event noted handled only then. @default at once
   */
  handled?: () => Promise<void>
  /** Long-poll timeout of one /sync, in ms. */
  pollMs: number
  logger: Logger
  /** Stops the loop and every wait in it. */
  signal: AbortSignal
}

/**
 * The /sync long-poll loop: new timeline events, in order, each once (deduplicated by event
 * id). A batch's sync token is saved once its events have been handled (`handled`), without
 * holding up the next /sync, and each event of the batch is noted as handled meanwhile, so
 * after a restart (of this process or of the homeserver) the loop resumes where it stopped:
 * what a killed process had not finished with is handed over again, and only that (handled
 * again, a block refused for good could be kept against later state). A message held for a
 * kind nobody listens for yet counts as handled (subscribers.ts). A room's
 * history from before I joined is not mine to replay: in a room I join, events count from my
 * own join event; rooms joined before a restart count at once. Also tells when the events
 * this process sent have come back (`echoed`).
 */
export class Sync {
  readonly #client: MatrixClient
  readonly #options: SyncOptions
  readonly #seen = new BoundedMap<string, string>(SEEN_KEPT) // event id → its room
  readonly #live: Set<string>
  readonly #outstanding = new Set<string>() // events I sent that have not come back yet
  readonly #echoes = new EventTarget()
  #since: string
  #loop?: Promise<void>
  /** The token saves and the notes of events handled, in order. */
  #saving: Promise<void> = Promise.resolve()
  /** Whether I have noted an event handled yet: the first note may create the notes file, whose name is then synced too. */
  #noted = false

  private constructor (client: MatrixClient, options: SyncOptions, since: string, live: Set<string>) {
    this.#client = client
    this.#options = options
    this.#since = since
    this.#live = live
  }

  /** Picks up from the saved token; with none, starts now (a first sync without history). */
  static async open (client: MatrixClient, options: SyncOptions): Promise<Sync> {
    const { signal, tokenFile } = options
    const saved = tokenFile === undefined ? undefined : (await readOwnFile(tokenFile, { is: 'the matrix sync token this member wrote', error: DamagedFileError, maxBytes: MAX_TOKEN_BYTES }))?.toString('utf8').trim() || undefined
    if (saved !== undefined && tokenFile !== undefined) {
      const joined = await request(() => client.http.authedRequest<{ joined_rooms: string[] }>(Method.Get, '/joined_rooms'), { signal })
      const sync = new Sync(client, options, saved, new Set(joined.joined_rooms))
      const handled = (await readOwnFile(tokenFile + HANDLED_SUFFIX, { is: 'the matrix notes of handled events this member wrote', error: DamagedFileError, maxBytes: MAX_HANDLED_BYTES }))?.toString('utf8').split('\n').filter(id => id.length > 0) ?? []
      for (const id of handled) sync.#seen.set(id, '')
      return sync
    }
    const first = await request(() => client.http.authedRequest<SyncResponse>(Method.Get, '/sync', { filter: JSON.stringify({ room: { timeline: { limit: 0 } } }), timeout: '0' }), { signal })
    if (tokenFile !== undefined) await saveToken(tokenFile, first.next_batch)
    return new Sync(client, options, first.next_batch, new Set())
  }

  /** Starts the loop (once), handing each new event of a room I count to `deliver`. */
  start (deliver: (roomId: string, event: TimelineEvent) => void): void {
    this.#loop ??= this.#run(deliver)
  }

  /** Notes an event I sent, to be waited for by `echoed`. */
  sent (eventId: string): void {
    if (!this.#seen.has(eventId)) this.#outstanding.add(eventId)
  }

  /** Resolves when every event I noted as sent has come back, or when `signal` aborts. */
  async echoed (signal: AbortSignal): Promise<void> {
    while (this.#outstanding.size > 0 && !signal.aborted) await once(this.#echoes, 'echo', { signal }).catch(() => undefined)
  }

  /** Resolves when the loop has stopped (after the signal aborted) and the last token it took is saved. */
  async stopped (): Promise<void> {
    await this.#loop?.catch(() => undefined)
    await this.#saving
  }

  async #run (deliver: (roomId: string, event: TimelineEvent) => void): Promise<void> {
    const { signal, logger, pollMs, tokenFile } = this.#options
    while (!signal.aborted) {
      try {
        const batch = await request(() => this.#client.http.authedRequest<SyncResponse>(Method.Get, '/sync', { since: this.#since, timeout: String(pollMs), filter: TIMELINE_FILTER }), { signal })
        for (const [roomId, joined] of Object.entries(batch.rooms?.join ?? {})) {
          // My join before this batch's timeline: everything in it comes after.
          if ((joined.state?.events ?? []).some(e => this.#isMyJoin(e))) this.#live.add(roomId)
          // My join in this batch: what came before it is the room's history, not mine, also in a room that
          // counts already (a restart from a token saved before I joined, when the room is among my rooms).
          let events = joined.timeline?.events ?? []
          let joinedAt = events.findLastIndex(e => this.#isJoining(e))
          // More happened in a room I count than one batch holds: what it left out comes from the room's history first.
          const { limited, prev_batch: previous } = joined.timeline ?? {}
          if (limited === true && this.#live.has(roomId) && joinedAt < 0 && previous !== undefined) {
            const missed = await this.#leftOut(roomId, previous).catch((err: unknown) => {
              if (signal.aborted) throw err
              // A room whose history cannot be read holds up neither the other rooms nor the token: its gap is lost, and said so.
              logger.warn('the homeserver left events out of a sync batch, and they could not be fetched: they are lost', { roomId, error: (err as Error).message })
              return []
            })
            events = [...missed, ...events]
            joinedAt = events.findLastIndex(e => this.#isJoining(e))
          }
          for (const [i, event] of events.entries()) this.#take(roomId, event, deliver, i < joinedAt)
        }
        this.#since = batch.next_batch
        if (tokenFile !== undefined) this.#save(tokenFile, batch.next_batch)
      } catch (err) {
        if (signal.aborted) return
        // The homeserver is down or restarting: keep the token and try again.
        logger.warn('matrix sync failed; retrying', { error: (err as Error).message })
        await pause(RETRY_MS, undefined, { signal }).catch(() => undefined)
      }
    }
  }

  /**
   * The events of `roomId` a limited batch left out: from the last batch (`this.#since`) up
   * to `to` (its `prev_batch`), oldest first, those not handled yet; from my join on where
   * my join is among them (what came before it is the room's history, not mine). At most
   * GAP_KEPT events and GAP_BYTES: the earliest are kept, and the loss of the rest is said.
   */
  async #leftOut (roomId: string, to: string): Promise<TimelineEvent[]> {
    const { signal, logger } = this.#options
    let missed: TimelineEvent[] = []
    let bytes = 0
    // Full: the rest is only read for my join, which would start the gap again (found red-teaming:
    // a gap filled before my join came was handed over, history and all, and what followed it lost).
    let full = false
    for (let page: string | undefined = this.#since; page !== undefined;) {
      const query: Record<string, string> = { dir: 'f', from: page, to, limit: String(TIMELINE_LIMIT) }
      const response: MessagesResponse = await request(async () => this.#client.http.authedRequest<MessagesResponse>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/messages`, query), { signal })
      const { chunk = [], end } = response
      if (chunk.length === 0) break
      for (const event of chunk) {
        if (this.#isJoining(event)) ({ missed, bytes, full } = { missed: [], bytes: 0, full: false })
        if (full || this.#seen.has(event.event_id)) continue
        bytes += JSON.stringify(event).length
        full = missed.length >= GAP_KEPT || bytes > GAP_BYTES
        if (!full) missed.push(event)
      }
      page = end
    }
    if (full) logger.warn('more happened in a room at once than I fetch back: the latest events before the batch were left out', { roomId, kept: missed.length })
    return missed
  }

  /** Saves `token` once what was delivered before it has been handled, after the saves before it; the events noted handled are then behind it. */
  #save (tokenFile: string, token: string): void {
    this.#afterHandled(async () => {
      await saveToken(tokenFile, token)
      // The notes are a new file now: the next note syncs its name too.
      this.#noted = false
    }, 'could not save the matrix sync token')
  }

  /**
   * Notes event `id` as handled once it is, so a restart before its batch's token is saved skips
   * it. Synced, as the token is: a power cut must not leave what the event did on the disk and
   * the note that it was done lost.
   */
  #handled (tokenFile: string, id: string): void {
    this.#afterHandled(async () => {
      await appendSynced(tokenFile + HANDLED_SUFFIX, id + '\n', { named: !this.#noted })
      this.#noted = true
    }, 'could not note a matrix event as handled')
  }

  /** Runs `write` once what was delivered so far has been handled, after the writes before it. */
  #afterHandled (write: () => Promise<void>, failure: string): void {
    const handled = this.#options.handled?.() ?? Promise.resolve()
    this.#saving = this.#saving.then(async () => {
      await handled
      await write()
    }).catch((err: unknown) => {
      // A restart then resumes from an older token, or without this note, and is handed some events again.
      this.#options.logger.warn(failure, { file: this.#options.tokenFile, error: (err as Error).message })
    })
  }

  #take (roomId: string, event: TimelineEvent, deliver: (roomId: string, event: TimelineEvent) => void, beforeMyJoin: boolean): void {
    if (this.#seen.has(event.event_id)) return
    this.#seen.set(event.event_id, roomId)
    if (this.#outstanding.delete(event.event_id)) this.#echoes.dispatchEvent(new Event('echo'))
    if (this.#live.has(roomId) && !beforeMyJoin) deliver(roomId, event)
    else if (this.#isMyJoin(event)) this.#live.add(roomId)
    // Also one not mine to deliver (before my join): a restart mid-batch counts the room at once, and would hand it over.
    if (this.#options.tokenFile !== undefined) this.#handled(this.#options.tokenFile, event.event_id)
  }

  /** My join, not a change of my display name or avatar (which is a join event too). */
  #isJoining (event: TimelineEvent): boolean {
    return this.#isMyJoin(event) && event.unsigned?.prev_content?.membership !== 'join'
  }

  #isMyJoin (event: TimelineEvent): boolean {
    return event.type === 'm.room.member' && event.state_key === this.#options.userId && (event.content as { membership?: string }).membership === 'join'
  }
}

/**
 * Saves a sync token; the events noted handled before it are behind it now. The token is on the
 * disk before the notes are cleared: after a power cut either the old token and its notes, or
 * the new one. The notes are cleared as a new empty file renamed over them, so whatever is
 * there (a FIFO, a link, symbolic or hard) is replaced, neither waited on nor written through;
 * the next note syncs its name.
 */
async function saveToken (tokenFile: string, token: string): Promise<void> {
  await writeAtomic(tokenFile, token, { sync: true })
  await writeAtomic(tokenFile + HANDLED_SUFFIX, '')
}
