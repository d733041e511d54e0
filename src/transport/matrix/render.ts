import { BoundedMap } from '../../core/bounded-map.ts'
import type { BlockId } from '../../core/records.ts'
import { peekRecord } from '../../identity/index.ts'
import { BusMessage } from '../index.ts'
import type { TimelineEvent } from './sync.ts'

/**
 * Bus messages travel as `m.room.message` notices, so Element shows them, with the message
 * itself under `CONTENT_KEY`; a room message without it is a person talking to the agents.
 */
export const CONTENT_KEY = 'org.conclave.message'

/** Proposals whose thread votes go into, the latest this many: a vote on an older one goes unthreaded. */
const THREADS_KEPT = 10_000

type PeekedRecord = ReturnType<typeof peekRecord>['record']

/** Each proposal's event: the root of the thread its votes go into. */
export class Threads {
  readonly #roots = new BoundedMap<BlockId, string>(THREADS_KEPT)

  /** Notes a message's event, sent or seen: a proposal's becomes its thread's root. */
  note (message: BusMessage, eventId: string): void {
    if (message.kind === 'record' && peekRecord(message.jwt).record?.type === 'proposal') this.#roots.set(message.block, eventId)
  }

  /** A vote's proposal's event, if known. */
  rootOf (record: PeekedRecord): string | undefined {
    return record?.type === 'vote' ? this.#roots.get(record.proposal) : undefined
  }
}

/**
 * How a bus message shows in the room: a notice with a line for people. A vote goes into
 * its proposal's thread, with a 👍/👎 reaction on the proposal; an answer to a person goes
 * into the thread of their message (Matrix event ids start with $).
 */
export function notice (message: BusMessage, threads: Threads): { content: Record<string, unknown>, reaction?: { root: string, key: string } } {
  const record = message.kind === 'record' ? peekRecord(message.jwt).record : null
  const root = threads.rootOf(record)
  const replyTo = message.kind === 'chat' && message.inReplyTo?.startsWith('$') === true ? message.inReplyTo : undefined
  const thread = root ?? replyTo
  const relation = thread === undefined ? {} : { 'm.relates_to': { rel_type: 'm.thread', event_id: thread, is_falling_back: true, 'm.in_reply_to': { event_id: thread } } }
  const content = { [CONTENT_KEY]: message, msgtype: 'm.notice', body: describe(message, record), ...relation }
  return root !== undefined && record?.type === 'vote' ? { content, reaction: { root, key: record.accept ? '👍' : '👎' } } : { content }
}

/** The bus message a room message carries, or a person's own message as a chat message (its event id is its id). */
export function fromEvent (event: TimelineEvent): ReturnType<typeof BusMessage.safeParse> {
  const content = (event.content ?? {}) as Record<string, unknown>
  if (CONTENT_KEY in content) return BusMessage.safeParse(content[CONTENT_KEY])
  const body = typeof content.body === 'string' ? content.body.trim() : ''
  const relates = content['m.relates_to'] as { rel_type?: string, event_id?: string } | undefined
  return BusMessage.safeParse({ kind: 'chat', from: event.sender, body: body.slice(0, 8000), id: event.event_id, ...(relates?.rel_type === 'm.thread' && relates.event_id !== undefined ? { inReplyTo: relates.event_id } : {}) })
}

/** The line a person reads in Element for each protocol event. */
function describe (message: BusMessage, record: PeekedRecord): string {
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
