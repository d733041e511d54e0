import { BoundedMap } from '../../core/bounded-map.ts'
import { serverOf, type BlockId } from '../../core/records.ts'
import { peekRecord } from '../../identity/index.ts'
import { BusMessage, type Delivery } from '../index.ts'
import type { TimelineEvent } from './sync.ts'

/**
 * Bus messages travel as `m.room.message` notices, so Element shows them, with the message
 * itself under `CONTENT_KEY`; a room message without it is a person talking to the agents.
 */
export const CONTENT_KEY = 'org.conclave.message'

/** Proposals whose thread votes go into, the latest this many: a vote on an older one goes unthreaded. */
const THREADS_KEPT = 10_000
/**
 * Proposals one account's notices may root, its latest this many: a member has one a round,
 * and one account's copies under made-up block ids must not push out the others' (found red-teaming).
 */
const ROOTS_PER_SENDER = 64

type PeekedRecord = ReturnType<typeof peekRecord>['record']

/** A member's name for its DID (`agent-2`), where the bus knows it. */
export type NameOf = (did: string) => string | undefined

/** The account a member's DID talks as on the bus, where the bus knows it. */
export type AccountOf = (did: string) => string | undefined

/**
 * Each proposal's event and proposer: the root of the thread its votes go into, and what a
 * researcher's reaction is on. The first notice of a proposal its proposer's own account sent,
 * not in a thread, carrying the record its block anchors: anyone may copy a notice (found
 * red-teaming: a stranger's copy, posted in a thread, took the votes into it, where the
 * homeserver refused them; copies under made-up block ids pushed the real proposals out; a
 * member's copy, posted before the proposer's own notice, took the reactions meant for the
 * real one). Which record a block anchors is known where its block travels on the bus (replicas):
 * the proposer sends it before its notice.
 */
export class Threads {
  readonly #roots = new BoundedMap<BlockId, { jwt: string, proposer: string, event?: string }>(THREADS_KEPT)
  readonly #proposals = new BoundedMap<string, BlockId>(THREADS_KEPT) // a proposal notice's event → the proposal
  readonly #bySender = new BoundedMap<string, BlockId[]>(THREADS_KEPT) // an account → the proposals its blocks or notices name, oldest first
  readonly #accountOf?: AccountOf

  /** `accountOf`: whose account each proposer's is (absent: anyone's, where the bus does not know them). */
  constructor ({ accountOf }: { accountOf?: AccountOf } = {}) {
    this.#accountOf = accountOf
  }

  /** Notes a message's event, sent or seen, from `sender`, `threaded` where the event is in a thread: a proposal's own notice becomes its thread's root, its block says what record the notice must carry. */
  note (message: BusMessage, eventId: string, { sender, threaded }: { sender: string, threaded: boolean }): void {
    const carried = message.kind === 'block' ? { block: message.block.id, jwt: message.block.record } : message.kind === 'record' && !threaded ? message : undefined
    if (carried === undefined || this.#roots.get(carried.block)?.event !== undefined) return
    const proposer = this.#proposerOf(carried, sender)
    if (proposer === undefined) return
    const known = this.#roots.get(carried.block) ?? this.#add(carried, proposer, sender)
    if (message.kind !== 'record') return
    known.event = eventId
    this.#proposals.set(eventId, carried.block)
  }

  /** The proposal whose notice is the event `eventId`, if it is one. */
  proposalAt (eventId: string): BlockId | undefined {
    return this.#proposals.get(eventId)
  }

  /** The proposal a notice `message` from `sender` would root (one I no longer hold, say): where it is its proposer's own. */
  proposalOf (message: BusMessage, sender: string): BlockId | undefined {
    return message.kind === 'record' && this.#proposerOf(message, sender) !== undefined ? message.block : undefined
  }

  /** The event of the proposal a vote or decision is about, and its proposer, if known. */
  rootOf (record: PeekedRecord): { event: string, proposer: string } | undefined {
    const root = record?.type === 'vote' || record?.type === 'human-vote' || record?.type === 'decision' ? this.#roots.get(record.proposal) : undefined
    return root?.event === undefined ? undefined : { event: root.event, proposer: root.proposer }
  }

  /** The proposer of the proposal `carried` holds, where `sender` is its account and its block anchors it as far as I know. */
  #proposerOf (carried: { block: BlockId, jwt: string }, sender: string): string | undefined {
    const { record, issuer } = peekRecord(carried.jwt)
    if (record?.type !== 'proposal' || issuer === null) return undefined
    if (this.#accountOf !== undefined && this.#accountOf(issuer) !== sender) return undefined
    const anchored = this.#roots.get(carried.block)?.jwt
    return anchored === undefined || anchored === carried.jwt ? issuer : undefined
  }

  /** Holds a proposal `sender` named: each account its latest ROOTS_PER_SENDER. */
  #add (carried: { block: BlockId, jwt: string }, proposer: string, sender: string): { jwt: string, proposer: string, event?: string } {
    const root = { jwt: carried.jwt, proposer }
    this.#roots.set(carried.block, root)
    const named = this.#bySender.get(sender) ?? []
    this.#bySender.set(sender, named)
    named.push(carried.block)
    const oldest = named.length > ROOTS_PER_SENDER ? named.shift() : undefined
    if (oldest !== undefined) {
      this.#proposals.delete(this.#roots.get(oldest)?.event ?? '')
      this.#roots.delete(oldest)
    }
    return root
  }
}

/**
 * How a bus message shows in the room: a notice with a line for people (plain and HTML, as
 * Element shows it) naming the member, the round and what was measured. A vote and its
 * proposal's decision go into the proposal's thread, a vote also as a 👍/👎 reaction on the
 * proposal (one per voter: each member has its own account); an answer to a person goes
 * into the thread of their message (Matrix event ids start with $), or into the thread their
 * message is in (`within`, which the bus asks the homeserver).
 */
/**
 * Where the event an answer answers is, as the homeserver says: in a thread (its root), or
 * related to another event otherwise (an edit, say), where no thread may start: the answer is then a plain reply.
 */
export type AnswerPlace = { thread: string } | { related: true }

export function notice (message: BusMessage, threads: Threads, nameOf: NameOf = () => undefined, place?: AnswerPlace): { content: Record<string, unknown>, reaction?: { root: string, key: string } } {
  const { record, issuer } = message.kind === 'record' ? peekRecord(message.jwt) : { record: null, issuer: null }
  const root = threads.rootOf(record)
  const relation = relationFor(root?.event, answeredBy(message), place)
  const name = (did: string | null | undefined): string => (did === null || did === undefined ? undefined : nameOf(did)) ?? (did === null || did === undefined ? 'a member' : `${did.slice(0, 16)}…`)
  const line = describe(message, record, { author: name(issuer), proposer: name(root?.proposer ?? (record?.type === 'decision' ? record.proposer : undefined)) }, nameOf)
  // `m.mentions: {}`: a notice pings nobody, whatever its text holds (a peer's rationale, a question's words: `@room`).
  const content = { [CONTENT_KEY]: message, msgtype: 'm.notice', body: line.text, format: 'org.matrix.custom.html', formatted_body: line.html, 'm.mentions': {}, ...relation }
  return root !== undefined && record?.type === 'vote' ? { content, reaction: { root: root.event, key: record.accept ? '👍' : '👎' } } : { content }
}

/**
 * A notice's relation: into its proposal's thread (`root`); an answer into the thread of what
 * it answers, or, where that is in a thread already (a proposal's, say), into that thread as a
 * reply to it (a thread cannot start at an event in one, nor at one related to another).
 */
function relationFor (root: string | undefined, replyTo: string | undefined, place: AnswerPlace | undefined): Record<string, unknown> {
  if (root !== undefined) return { 'm.relates_to': { rel_type: 'm.thread', event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: root } } }
  if (replyTo === undefined) return {}
  if (place !== undefined && 'related' in place) return { 'm.relates_to': { 'm.in_reply_to': { event_id: replyTo } } }
  if (place !== undefined) return { 'm.relates_to': { rel_type: 'm.thread', event_id: place.thread, is_falling_back: false, 'm.in_reply_to': { event_id: replyTo } } }
  return { 'm.relates_to': { rel_type: 'm.thread', event_id: replyTo, is_falling_back: true, 'm.in_reply_to': { event_id: replyTo } } }
}

/** The event a message answers, where it answers one: a person's message, or the `!federate` an enrolment or roster answers. Its answer goes into that event's thread. */
export function answeredBy (message: BusMessage): string | undefined {
  const answered = message.kind === 'chat' ? message.inReplyTo : message.kind === 'enrol' || message.kind === 'roster' ? message.call : undefined
  return answered?.startsWith('$') === true ? answered : undefined
}

/**
 * The bus message a room message carries, or a person's own message as a chat message (its
 * event id is its id). A chat message, an enrolment and a roster are from their Matrix sender, whatever they say: the
 * homeserver vouches for the sender, nobody for the text. A carried chat message's id is its
 * event's too: one naming another's event would have answers to it go into that one's thread.
 */
export function fromEvent (event: TimelineEvent): ReturnType<typeof BusMessage.safeParse> {
  const content = (event.content ?? {}) as Record<string, unknown>
  if (CONTENT_KEY in content) {
    const carried = content[CONTENT_KEY] as { kind?: unknown } | null
    // A reaction is only ever the room's own m.reaction event: one carried in a message is someone's claim.
    if (carried?.kind === 'reaction') return BusMessage.safeParse(null)
    if (carried?.kind === 'chat') return BusMessage.safeParse({ ...carried, from: event.sender, id: event.event_id })
    return BusMessage.safeParse(carried?.kind === 'enrol' || carried?.kind === 'roster' ? { ...carried, from: event.sender } : carried)
  }
  const body = typeof content.body === 'string' ? content.body.trim() : ''
  const relates = content['m.relates_to'] as { rel_type?: string, event_id?: string } | undefined
  return BusMessage.safeParse({ kind: 'chat', from: event.sender, body: body.slice(0, 8000), id: event.event_id, ...(relates?.rel_type === 'm.thread' && relates.event_id !== undefined ? { inReplyTo: relates.event_id } : {}) })
}

/**
 * A person's 👍/👎 (or any key) on a proposal's notice, as a reaction message from its
 * Matrix sender; undefined for a reaction on anything else.
 */
export function reactionOf (event: TimelineEvent, threads: Threads): BusMessage | undefined {
  const relates = ((event.content ?? {}) as { 'm.relates_to'?: { rel_type?: unknown, event_id?: unknown, key?: unknown } })['m.relates_to']
  if (relates?.rel_type !== 'm.annotation' || typeof relates.event_id !== 'string' || typeof relates.key !== 'string') return undefined
  const proposal = threads.proposalAt(relates.event_id)
  if (proposal === undefined) return undefined
  const parsed = BusMessage.safeParse({ kind: 'reaction', from: event.sender, key: relates.key, event: event.event_id, proposal })
  return parsed.success ? parsed.data : undefined
}

/** A notice's line, as plain text and as HTML. */
interface Line { text: string, html: string }

/** Builds a line from literal parts and values; values are escaped in the HTML, `bold` ones emphasised. */
function line (parts: ReadonlyArray<string | { value: string, bold?: boolean, code?: boolean }>): Line {
  const text = parts.map(p => typeof p === 'string' ? p : p.value).join('')
  const html = parts.map(p => typeof p === 'string' ? escapeHtml(p) : p.bold === true ? `<b>${escapeHtml(p.value)}</b>` : p.code === true ? `<code>${escapeHtml(p.value)}</code>` : escapeHtml(p.value)).join('')
  return { text, html }
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

const signed = (n: number): string => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(4)}`

/** The line a person reads in Element for each protocol event. */
function describe (message: BusMessage, record: PeekedRecord, who: { author: string, proposer: string }, nameOf: NameOf): Line {
  const author = { value: who.author, bold: true }
  switch (message.kind) {
    case 'chat': return { text: message.body, html: escapeHtml(message.body).replace(/\n/g, '<br>') }
    // Ledger plumbing, once per record and per member: one short line each, for people to skim past.
    case 'block': return line(['⛓ block ', { value: message.block.id.slice(0, 8), code: true }])
    case 'want': return line(['⛓ wants block ', { value: message.block.slice(0, 8), code: true }])
    case 'hello': return line(['👋 ', { value: message.name, bold: true }, ' is listening'])
    case 'enrol': return line(['✍️ ', { value: message.from, bold: true }, ' answers the call to federate'])
    case 'roster': return line(['📋 ', { value: message.from, bold: true }, ` calls the federation: ${message.members.length} members, `, message.members.map(d => nameOf(d) ?? `${d.slice(0, 16)}…`).join(', ')])
    case 'reaction': return line([message.key])
  }
  if (record === null) return line(['record ', { value: message.block, code: true }])
  switch (record.type) {
    case 'proposal': return line(['📦 ', author, ` proposes its round ${record.round} update: trained on ${record.numSamples} samples`,
      record.metric === undefined ? '' : `, ${record.metric.name} ${record.metric.value.toFixed(4)}`, '; Δw ', { value: record.delta.cid, code: true }, ' in block ', { value: message.block, code: true }])
    case 'vote': return line([record.accept ? '👍 ' : '👎 ', author, ` ${record.accept ? 'accepts' : 'rejects'} `, { value: who.proposer, bold: true },
      `'s round ${record.round} update (score change ${signed(record.score)}): ${record.rationale}`])
    case 'human-vote': return line([`🧑‍🔬 ${record.accept ? '👍' : '👎'} `, { value: record.researcher, bold: true }, ` ${record.accept ? 'accepts' : 'rejects'} `, { value: who.proposer, bold: true },
      `'s round ${record.round} update (reaction `, { value: record.event, code: true }, ', recorded by ', author, ')'])
    case 'decision': return line([`⚖️ round ${record.round}: `, { value: who.proposer, bold: true }, `'s update ${record.accepted ? 'accepted' : 'rejected'}, `,
      `${record.accepts} accepts and ${record.rejects} rejects, ${record.required} accepts needed (recorded by `, author, ')'])
    case 'charter': return line(['📜 ', author, ` charters the federation: ${record.members.length} members, task ${record.task}, votes counted for ${record.windowSeconds} s after each proposal`])
    case 'checkpoint': return line([`✅ round ${record.round} checkpoint by `, author, `: ${record.merged.length} update${record.merged.length === 1 ? '' : 's'} merged, model `, { value: record.model.sha256.slice(0, 12), code: true }])
  }
}

/**
 * Who sent an event, and when my homeserver (`server`) took it if one of its users sent it
 * (its `origin_server_ts`, in Unix seconds): one time for every member reading the room there.
 * Another homeserver's time is not taken: a member running its own could set it as it likes.
 */
export function deliveryOf (event: TimelineEvent, server: string): Delivery {
  const ts = event.origin_server_ts
  const at = serverOf(event.sender) === server && typeof ts === 'number' && Number.isSafeInteger(ts) && ts > 0 ? Math.floor(ts / 1000) : undefined
  return { from: event.sender, ...(at === undefined ? {} : { at }) }
}
