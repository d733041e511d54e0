import fc from 'fast-check'
import { execFileSync } from 'node:child_process'
import { fstatSync, lstatSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { MatrixError, type MatrixClient } from 'matrix-js-sdk'
import { describe, expect, it, vi } from 'vitest'
import { BoundedMap } from '../../src/core/bounded-map.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { MAX_RECORD_BYTES } from '../../src/core/records.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createIdentity } from '../../src/identity/index.ts'
import type { BusMessage, Delivery } from '../../src/transport/index.ts'
import { CONTENT_KEY, deliveryOf, fromEvent, notice, reactionOf, Threads } from '../../src/transport/matrix/render.ts'
import { request } from '../../src/transport/matrix/requests.ts'
import { HELD_BYTES_PER_ROOM, Subscribers } from '../../src/transport/matrix/subscribers.ts'
import { Sync, type TimelineEvent } from '../../src/transport/matrix/sync.ts'
import { withSyncs } from '../core/file-syncs.ts'

// The Matrix bus's parts that need no homeserver; the bus itself runs against a real
// Synapse in test/integration/matrix.int.test.ts.

describe('BoundedMap', () => {
  it('keeps exactly the last `limit` distinct keys set, oldest first', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 60 }), (limit, keys) => {
      const map = new BoundedMap<number, number>(limit)
      keys.forEach((key, i) => map.set(key, i))
      const lastSet = [...new Map(keys.map((key, i) => [key, i])).entries()].sort((a, b) => a[1] - b[1])
      expect([...map.entries()]).toEqual(lastSet.slice(-limit))
    }), { seed: 18, numRuns: 200 })
  })

  it('refuses a limit below one', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError)
  })
})

describe('requests to the homeserver', () => {
  it('a rate-limit wait ends when its signal aborts, and the request is not tried again', async () => {
    const controller = new AbortController()
    let calls = 0
    const limited = request(async () => {
      calls++
      throw new MatrixError({ errcode: 'M_LIMIT_EXCEEDED', error: 'slow down', retry_after_ms: 30_000 }, 429)
    }, { logger: { info () {}, warn: () => { controller.abort() } }, signal: controller.signal }) // aborts as the wait begins
    await expect(limited).rejects.toMatchObject({ name: 'AbortError' })
    expect(calls).toBe(1)
  }, 10_000) // far less than the 30 s the server asked for: the wait was cut short
})

describe('how bus messages show in a Matrix room', () => {
  const proposer = createIdentity(randomSecretKey())
  const voter = createIdentity(randomSecretKey())
  const cid = 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i'
  const block = 'b'.repeat(64)

  it('a vote goes into its proposal\'s thread with a 👍/👎 reaction, naming voter, proposer, round and measured change; a vote on an unknown proposal goes unthreaded', async () => {
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10, metric: { name: 'loss', value: 0.5 } }) }
    const vote: BusMessage = { kind: 'record', block: 'c'.repeat(64), jwt: await voter.sign({ type: 'vote', federation: 'f', round: 1, proposal: block, accept: true, score: 0.1, rationale: 'better on my <data>' }) }
    const names = new Map([[proposer.did, 'agent-2'], [voter.did, 'agent-3']])
    const nameOf = (did: string): string | undefined => names.get(did)
    const threads = new Threads()
    const html = { format: 'org.matrix.custom.html', 'm.mentions': {} }
    expect(notice(vote, threads, nameOf)).toEqual({
      content: { [CONTENT_KEY]: vote, msgtype: 'm.notice', ...html, body: "👍 agent-3 accepts a member's round 1 update (score change +0.1000): better on my <data>", formatted_body: "👍 <b>agent-3</b> accepts <b>a member</b>&#39;s round 1 update (score change +0.1000): better on my &lt;data&gt;" }
    })
    expect(notice(proposal, threads, nameOf).content).toMatchObject({
      body: `📦 agent-2 proposes its round 1 update: trained on 10 samples, loss 0.5000; Δw ${cid} in block ${block}`,
      formatted_body: `📦 <b>agent-2</b> proposes its round 1 update: trained on 10 samples, loss 0.5000; Δw <code>${cid}</code> in block <code>${block}</code>`
    })
    threads.note(proposal, '$proposal', { sender: '@fed.agent-2:x', threaded: false })
    expect(notice(vote, threads, nameOf)).toEqual({
      content: {
        [CONTENT_KEY]: vote, msgtype: 'm.notice', ...html,
        body: "👍 agent-3 accepts agent-2's round 1 update (score change +0.1000): better on my <data>",
        formatted_body: "👍 <b>agent-3</b> accepts <b>agent-2</b>&#39;s round 1 update (score change +0.1000): better on my &lt;data&gt;",
        'm.relates_to': { rel_type: 'm.thread', event_id: '$proposal', is_falling_back: true, 'm.in_reply_to': { event_id: '$proposal' } }
      },
      reaction: { root: '$proposal', key: '👍' }
    })
  })

  it('a decision goes into its proposal\'s thread, naming the proposer, the count and the recorder', async () => {
    const recorder = createIdentity(randomSecretKey())
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 2, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 }) }
    const decision: BusMessage = { kind: 'record', block: 'd'.repeat(64), jwt: await recorder.sign({ type: 'decision', federation: 'f', round: 2, proposal: block, proposer: proposer.did, accepted: false, accepts: 1, rejects: 3, required: 2, votes: [] }) }
    const names = new Map([[proposer.did, 'agent-2'], [recorder.did, 'agent-1']])
    const threads = new Threads()
    threads.note(proposal, '$proposal', { sender: '@fed.agent-2:x', threaded: false })
    const { content, reaction } = notice(decision, threads, did => names.get(did))
    expect(content).toMatchObject({ body: "⚖️ round 2: agent-2's update rejected, 1 accepts and 3 rejects, 2 accepts needed (recorded by agent-1)", 'm.relates_to': { event_id: '$proposal' } })
    expect(reaction).toBeUndefined()
  })

  it('an answer to a person goes into the thread of their message', () => {
    const answer: BusMessage = { kind: 'chat', from: 'agent-2', body: 'I voted to accept', id: 'a1', inReplyTo: '$question' }
    expect(notice(answer, new Threads()).content['m.relates_to']).toMatchObject({ rel_type: 'm.thread', event_id: '$question' })
  })

  // Found red-teaming: an answer to a question asked in a proposal's thread started a thread at
  // the question, an event in a thread, which a homeserver refuses: the answer was lost. The bus
  // asks the homeserver which thread the question is in (`within`).
  it('an answer to a question asked in a thread goes into that thread, as a reply to the question', () => {
    const answer: BusMessage = { kind: 'chat', from: 'agent-2', body: 'because', id: 'a1', inReplyTo: '$q' }
    expect(notice(answer, new Threads(), undefined, { thread: '$proposal' }).content['m.relates_to']).toEqual({ rel_type: 'm.thread', event_id: '$proposal', is_falling_back: false, 'm.in_reply_to': { event_id: '$q' } })
    // So does an enrolment answering a `!federate` sent in a thread.
    const enrol: BusMessage = { kind: 'enrol', from: '@lab.agent-1:x', call: '$call', jwt: 'e.y.j' }
    expect(notice(enrol, new Threads(), undefined, { thread: '$topic' }).content['m.relates_to']).toEqual({ rel_type: 'm.thread', event_id: '$topic', is_falling_back: false, 'm.in_reply_to': { event_id: '$call' } })
  })

  // Found red-teaming: a stranger's copy of a proposal's notice, posted in a thread, became the
  // proposal's root, and its votes went into that thread, where the homeserver refused them; a
  // member's copy, posted before the proposer's own notice, became the root for every bus but the proposer's.
  it('a proposal\'s thread is the first notice of it its proposer\'s account sent outside a thread, carrying what its block anchors: a copy, another\'s, one in a thread or another record under its block, changes nothing', async () => {
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 }) }
    const vote: BusMessage = { kind: 'record', block: 'c'.repeat(64), jwt: await voter.sign({ type: 'vote', federation: 'f', round: 1, proposal: block, accept: true, score: 0.1, rationale: 'fine' }) }
    const accounts = new Map([[proposer.did, '@fed.agent-2:x'], [voter.did, '@fed.agent-3:x']])
    const threads = new Threads({ accountOf: did => accounts.get(did) })
    const rootOfVote = (): unknown => notice(vote, threads).reaction?.root
    // The proposer's block comes first: the notice must carry the record it anchors.
    threads.note({ kind: 'block', block: { id: block, parents: [], record: proposal.jwt, time: 1, pow: 0 } }, '$block', { sender: '@fed.agent-2:x', threaded: false })
    threads.note(proposal, '$stranger', { sender: '@mallory:x', threaded: false })
    threads.note(proposal, '$copy', { sender: '@fed.agent-3:x', threaded: false })
    threads.note({ ...proposal, jwt: await voter.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 }) }, '$other', { sender: '@fed.agent-3:x', threaded: false })
    threads.note({ ...proposal, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 11 }) }, '$changed', { sender: '@fed.agent-2:x', threaded: false })
    threads.note(proposal, '$threaded', { sender: '@fed.agent-2:x', threaded: true })
    expect(rootOfVote()).toBeUndefined()
    expect(['$stranger', '$copy', '$other', '$changed', '$threaded'].map(e => threads.proposalAt(e))).toEqual([undefined, undefined, undefined, undefined, undefined])
    threads.note(proposal, '$proposal', { sender: '@fed.agent-2:x', threaded: false })
    threads.note(proposal, '$again', { sender: '@fed.agent-2:x', threaded: false })
    expect(rootOfVote()).toBe('$proposal')
    expect([threads.proposalAt('$proposal'), threads.proposalAt('$again')]).toEqual([block, undefined])
    // Nor do a member's own proposals under made-up ids push the real ones out, found red-teaming: 10,000 did. An account roots its latest 64.
    const own = await voter.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 })
    for (let i = 0; i < 10_000; i++) threads.note({ kind: 'record', block: i.toString(16).padStart(64, '0'), jwt: own }, `$c${i}`, { sender: '@fed.agent-3:x', threaded: false })
    expect(rootOfVote()).toBe('$proposal')
    expect(threads.proposalAt('$proposal')).toBe(block)
    expect([threads.proposalAt('$c0'), threads.proposalAt('$c9999')]).toEqual([undefined, (9999).toString(16).padStart(64, '0')])
  })

  // Found red-teaming: an answer to an event related to another (an edit, a reference) started a thread there, which Synapse refuses.
  it('an answer to an event related to another, not in a thread, is a plain reply to it', () => {
    const answer: BusMessage = { kind: 'chat', from: 'agent-2', body: 'because', id: 'a1', inReplyTo: '$edit' }
    expect(notice(answer, new Threads(), undefined, { related: true }).content['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: '$edit' } })
  })

  it('reads a bus message back from its event, a person\'s message as chat, and refuses a malformed one', () => {
    const chat: BusMessage = { kind: 'chat', from: '@a:x', body: 'hi', id: 'm1' }
    expect(fromEvent({ type: 'm.room.message', event_id: '$1', sender: '@a:x', content: { [CONTENT_KEY]: chat, body: 'hi' } })).toMatchObject({ success: true, data: { ...chat, id: '$1' } })
    expect(fromEvent({ type: 'm.room.message', event_id: '$2', sender: '@alice:x', content: { body: ' @agent-2 why? ', 'm.relates_to': { rel_type: 'm.thread', event_id: '$1' } } }))
      .toMatchObject({ success: true, data: { kind: 'chat', from: '@alice:x', body: '@agent-2 why?', id: '$2', inReplyTo: '$1' } })
    expect(fromEvent({ type: 'm.room.message', event_id: '$3', sender: '@m:x', content: { [CONTENT_KEY]: { kind: 'gossip' } } }).success).toBe(false)
  })

  it('an enrolment and a roster are from their Matrix sender, whoever they claim (a stranger cannot answer a call as an agent), and go into the call\'s thread', () => {
    const enrol: BusMessage = { kind: 'enrol', from: '@lab.agent-1:x', call: '$call', jwt: 'e.y.j' }
    const roster: BusMessage = { kind: 'roster', from: '@lab.agent-1:x', call: '$call', members: ['did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG'] }
    for (const message of [enrol, roster]) {
      expect(fromEvent({ type: 'm.room.message', event_id: '$e', sender: '@mallory:x', content: { [CONTENT_KEY]: message, body: '' } })).toMatchObject({ success: true, data: { ...message, from: '@mallory:x' } })
      expect(notice(message, new Threads()).content['m.relates_to']).toMatchObject({ rel_type: 'm.thread', event_id: '$call' })
    }
  })

  // The id too (found red-teaming): a stranger's message naming the researcher's command's event had answers go into its thread.
  it('a chat message is from its Matrix sender, whoever it claims to be from (a stranger cannot speak as a researcher), and known by its own event', () => {
    const forged = { kind: 'chat', from: '@researcher:x', body: '!pause', id: '$the-researchers-command' }
    expect(fromEvent({ type: 'm.room.message', event_id: '$4', sender: '@stranger:x', content: { [CONTENT_KEY]: forged, body: '!pause' } }))
      .toMatchObject({ success: true, data: { ...forged, from: '@stranger:x', id: '$4' } })
  })

  it('a person\'s reaction on a proposal\'s notice is a reaction message from its Matrix sender; one on anything else, or one carried in a message, is nothing', async () => {
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 }) }
    const threads = new Threads()
    threads.note(proposal, '$proposal', { sender: '@fed.agent-2:x', threaded: false })
    const reaction = (on: string): Parameters<typeof reactionOf>[0] => ({ type: 'm.reaction', event_id: '$r1', sender: '@alice:x', content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: on, key: '👍' } } })
    expect(reactionOf(reaction('$proposal'), threads)).toEqual({ kind: 'reaction', from: '@alice:x', key: '👍', event: '$r1', proposal: block })
    expect(reactionOf(reaction('$chat'), threads)).toBeUndefined()
    const forged = { kind: 'reaction', from: '@alice:x', key: '👍', event: '$r1', proposal: block }
    expect(fromEvent({ type: 'm.room.message', event_id: '$5', sender: '@mallory:x', content: { [CONTENT_KEY]: forged, body: '👍' } }).success).toBe(false)
  })

  it('a human vote goes into its proposal\'s thread, naming the researcher, the proposer, the reaction and who recorded it', async () => {
    const proposal: BusMessage = { kind: 'record', block, jwt: await proposer.sign({ type: 'proposal', federation: 'f', round: 1, base: cid, delta: { cid, sha256: 'a'.repeat(64) }, numSamples: 10 }) }
    const human: BusMessage = { kind: 'record', block: 'd'.repeat(64), jwt: await voter.sign({ type: 'human-vote', federation: 'f', round: 1, proposal: block, accept: false, researcher: '@alice:x', event: '$r1' }) }
    const names = new Map([[proposer.did, 'agent-2'], [voter.did, 'agent-3']])
    const threads = new Threads()
    threads.note(proposal, '$proposal', { sender: '@fed.agent-2:x', threaded: false })
    const shown = notice(human, threads, did => names.get(did))
    expect(shown.reaction).toBeUndefined()
    expect(shown.content).toMatchObject({ body: "🧑‍🔬 👎 @alice:x rejects agent-2's round 1 update (reaction $r1, recorded by agent-3)", 'm.relates_to': { event_id: '$proposal' } })
  })
})

describe('a Matrix room\'s subscribers', () => {
  const record = (n: number): BusMessage => ({ kind: 'record', block: `block-${n}`, jwt: `jwt.${n}.sig` })

  it('holds what comes before anyone subscribes and hands it, in order, to the first subscriber', async () => {
    const subscribers = new Subscribers()
    for (const n of [1, 2]) subscribers.deliver('!room', record(n))
    const first: BusMessage[] = []
    const second: BusMessage[] = []
    subscribers.add('!room', m => { first.push(m) })
    subscribers.deliver('!room', record(3))
    subscribers.add('!room', m => { second.push(m) })
    subscribers.deliver('!room', record(4))
    await subscribers.idle()
    expect({ first, second }).toEqual({ first: [1, 2, 3, 4].map(record), second: [record(4)] })
  })

  it('hands each message over with when my homeserver took it, also one held until someone listens: every member there judges a block\'s date by one time', async () => {
    const subscribers = new Subscribers()
    const event = (n: number, ts: unknown, sender = '@a:lab.example:8448'): { type: string, event_id: string, sender: string, content: unknown, origin_server_ts: unknown } => ({ type: 'm.room.message', event_id: `$${n}`, sender, content: {}, origin_server_ts: ts })
    subscribers.deliver('!room', record(1), deliveryOf(event(1, 1_800_000_000_999), 'lab.example:8448'))
    const got: Array<[BusMessage, Delivery | undefined]> = []
    subscribers.add('!room', (m, d) => { got.push([m, d?.at === undefined ? undefined : { at: d.at }]) })
    subscribers.deliver('!room', record(2), deliveryOf(event(2, 1_800_000_001_000), 'lab.example:8448'))
    await subscribers.idle()
    expect(got).toEqual([[record(1), { at: 1_800_000_000 }], [record(2), { at: 1_800_000_001 }]])
    // A server time that is not one says nothing; the copy then judges by its own clock.
    for (const ts of [undefined, '1800000000000', -5, 0, 1.5e300, Number.NaN]) expect(deliveryOf(event(3, ts), 'lab.example:8448')).toEqual({ from: '@a:lab.example:8448' })
    // Nor does another homeserver's (a member's own could set it as it likes); who sent it is said either way (a copy answers one account a share of its blocks).
    for (const sender of ['@a:evil.example', '@a:lab.example', '@a:lab.example:8449']) expect(deliveryOf(event(4, 1_800_000_000_000, sender), 'lab.example:8448')).toEqual({ from: sender })
  })

  it('holds a message until someone listens for its kind: a researcher\'s chat sent while a restarted member opens its ledger copy reaches its agent', async () => {
    const subscribers = new Subscribers()
    const chat = (body: string): BusMessage => ({ kind: 'chat', from: '@alice:localhost', body, id: body })
    const block = (n: number): BusMessage => ({ kind: 'block', block: { id: `b${n}` } } as never)
    const ledger: BusMessage[] = []
    const agent: BusMessage[] = []
    const everything: BusMessage[] = []
    subscribers.deliver('!room', block(1))
    subscribers.add('!room', m => { ledger.push(m) }, ['block'])
    subscribers.deliver('!room', chat('@agent-3 !resume'))
    subscribers.deliver('!room', block(2))
    subscribers.deliver('!room', chat('@agent-3 !status'))
    subscribers.add('!room', m => { agent.push(m) }, ['chat'])
    subscribers.deliver('!room', chat('@agent-3 hello'))
    subscribers.add('!room', m => { everything.push(m) })
    subscribers.deliver('!room', block(3))
    await subscribers.idle()
    expect(ledger).toEqual([block(1), block(2), block(3)])
    expect(agent).toEqual([chat('@agent-3 !resume'), chat('@agent-3 !status'), chat('@agent-3 hello')])
    expect(everything).toEqual([block(3)])
  })

  it('holds a bounded number of bytes for kinds nobody listens for: a flood of full-size records keeps the earliest few MiB', async () => {
    const subscribers = new Subscribers()
    subscribers.add('!room', () => {}, ['block'])
    // 3,000 records of the largest size a bus message may carry, which nobody in the room listens for (49 MB)
    const big = (n: number): BusMessage => ({ kind: 'record', block: `block-${n}`, jwt: `${n}.`.padEnd(MAX_RECORD_BYTES, 'x') })
    for (let n = 0; n < 3000; n++) subscribers.deliver('!room', big(n))
    subscribers.deliver('!room', { kind: 'chat', from: '@alice:localhost', body: '@agent-3 !resume', id: 'late' })
    const got: BusMessage[] = []
    subscribers.add('!room', m => { got.push(m) })
    await subscribers.idle()
    const bytes = got.reduce((n, m) => n + JSON.stringify(m).length, 0)
    expect(bytes).toBeLessThanOrEqual(HELD_BYTES_PER_ROOM)
    expect(bytes).toBeGreaterThan(HELD_BYTES_PER_ROOM - 2 * MAX_RECORD_BYTES)
    // the earliest records, in order; the researcher's small message sent after the flood still fits beside them
    const records = got.length - 1
    expect(records).toBeLessThan(3000)
    expect(got.map(m => m.kind === 'record' ? m.block : m.kind)).toEqual([...Array.from({ length: records }, (_, n) => `block-${n}`), 'chat'])
  })

  it('holds the count\'s worth of ordinary blocks: the byte bound is met only by large messages', async () => {
    const subscribers = new Subscribers()
    const block = (n: number): BusMessage => ({ kind: 'block', block: { id: `${n}`.padStart(64, '0'), parents: [], record: 'x'.repeat(1400), time: n, pow: 0 } } as never)
    for (let n = 0; n < 10_500; n++) subscribers.deliver('!room', block(n))
    const got: BusMessage[] = []
    subscribers.add('!room', m => { got.push(m) }, ['block'])
    await subscribers.idle()
    expect(got.length).toBe(10_000)
  })

  it('a subscriber for every kind takes what is held of any kind', async () => {
    const subscribers = new Subscribers()
    const agent: BusMessage[] = []
    subscribers.add('!room', () => {})
    subscribers.deliver('!room', { kind: 'chat', from: '@alice:localhost', body: '!resume', id: 'x' })
    subscribers.add('!room', m => { agent.push(m) }, ['chat'])
    await subscribers.idle()
    expect(agent).toEqual([])
  })

  it('goes on delivering when a handler throws, and stops after unsubscribe', async () => {
    const subscribers = new Subscribers()
    const seen: BusMessage[] = []
    subscribers.add('!room', () => { throw new Error('subscriber bug') })
    const subscription = subscribers.add('!room', m => { seen.push(m) })
    expect(subscribers.listening('!room')).toBe(true)
    subscribers.deliver('!room', record(1))
    await subscribers.idle()
    subscription.unsubscribe()
    subscribers.deliver('!room', record(2))
    await subscribers.idle()
    expect(seen).toEqual([record(1)])
  })

  it('counts a message handled once its handler returned and the work it acked has settled', async () => {
    const subscribers = new Subscribers()
    const work = Promise.withResolvers<void>()
    subscribers.add('!room', (_m, d) => { d?.ack?.(work.promise) })
    subscribers.deliver('!room', record(1))
    let handled = false
    const done = subscribers.handled().then(() => { handled = true })
    await subscribers.idle()
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(handled).toBe(false)
    // Work that fails is handled too: the subscriber logged it.
    work.reject(new Error('ingestion failed'))
    await done
    expect(handled).toBe(true)
  })
})

describe('the Matrix /sync loop', () => {
  const message = (id: string): TimelineEvent => ({ type: 'm.room.message', event_id: id, sender: '@b:localhost', content: {} })
  const myJoin: TimelineEvent = { type: 'm.room.member', event_id: '$join', sender: '@a:localhost', state_key: '@a:localhost', content: { membership: 'join' } }

  /**
   * A homeserver whose /sync after token t0 hands `timelines` (token t1), then nothing new;
   * /joined_rooms names their rooms, but `joining` only once that batch has been handed out.
   */
  function homeserver (timelines: Record<string, TimelineEvent[]>, joining?: string): MatrixClient {
    const join = Object.fromEntries(Object.entries(timelines).map(([room, events]) => [room, { timeline: { events, limited: true } }]))
    let served = false
    return {
      http: {
        authedRequest: async (_method: string, path: string, query?: { since?: string }) => {
          if (path === '/joined_rooms') return { joined_rooms: Object.keys(timelines).filter(room => served || room !== joining) }
          if (query?.since === 't0') { served = true; return { next_batch: 't1', rooms: { join } } }
          await new Promise(resolve => setTimeout(resolve, 20))
          return { next_batch: query?.since }
        }
      }
    } as unknown as MatrixClient
  }

  /** Runs a Sync from `tokenFile` for 200 ms, then stops it, or kills it when `handled` is given (its handling may never end); what it delivered. */
  async function syncing (client: MatrixClient, tokenFile: string, handled?: (delivered: string[]) => Promise<void>): Promise<string[]> {
    const delivered: string[] = []
    const closing = new AbortController()
    const sync = await Sync.open(client, { userId: '@a:localhost', tokenFile, ...(handled === undefined ? {} : { handled: async () => handled(delivered) }), pollMs: 10, logger: silentLogger, signal: closing.signal })
    sync.start((_room, e) => { delivered.push(e.event_id) })
    await new Promise(resolve => setTimeout(resolve, 200))
    closing.abort()
    // A run whose handling never ends is killed: nothing waits for it.
    if (handled === undefined) await sync.stopped()
    return delivered
  }

  async function tokenAt (token: string): Promise<string> {
    const tokenFile = join(await mkdtemp(join(tmpdir(), 'conclave-sync-')), 'sync-token')
    await writeFile(tokenFile, token)
    return tokenFile
  }

  const never = new Promise<void>(() => {})

  // The token was saved as soon as a batch was handed to the subscribers, before a replica had
  // kept its blocks: a process killed in between resumed after them, and lost them.
  it('saves a batch\'s sync token only once its events have been handled', async () => {
    const tokenFile = await tokenAt('t0')
    const handling = Promise.withResolvers<void>()
    const closing = new AbortController()
    const sync = await Sync.open(homeserver({ '!room': [message('$1')] }), { userId: '@a:localhost', tokenFile, handled: async () => handling.promise, pollMs: 10, logger: silentLogger, signal: closing.signal })
    const delivered: string[] = []
    sync.start((_room, e) => { delivered.push(e.event_id) })
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(delivered).toEqual(['$1'])
    expect(await readFile(tokenFile, 'utf8')).toBe('t0')
    handling.resolve()
    closing.abort()
    await sync.stopped()
    expect(await readFile(tokenFile, 'utf8')).toBe('t1')
  })

  // The token and the notes were written without a sync: after a power cut (not a kill) the notes
  // of a batch's handled events could be lost, or the token's new name reach the disk before its
  // bytes, and events handled before were handed over again.
  it('syncs each note of a handled event, and the token it saves, before what follows depends on them', async () => {
    const tokenFile = await tokenAt('t0')
    // Whether each file synced is the notes as they are then: saving a token makes them anew.
    const synced: Array<{ ino: number, size: number, notes: boolean }> = []
    await withSyncs(handle => { const { ino, size } = fstatSync(handle.fd); synced.push({ ino, size, notes: ino === statSync(tokenFile + '.handled', { throwIfNoEntry: false })?.ino }) }, async () => {
      expect(await syncing(homeserver({ '!room': [message('$1')] }), tokenFile)).toEqual(['$1'])
    })
    // The note of $1 (its line), the token (as written beside it, then renamed) and its folder.
    expect(synced).toContainEqual({ ino: expect.any(Number), size: '$1\n'.length, notes: true })
    expect(synced).toContainEqual({ ino: statSync(tokenFile).ino, size: 't1'.length, notes: false })
    expect(synced.map(s => s.ino)).toContain(statSync(dirname(tokenFile)).ino)
  })

  // Found in review: the token and its notes were read with readIfExists, which waited on a FIFO
  // for good and followed a link (another member's token, or notes that skip events never handled).
  it('refuses a FIFO or a link in place of the sync token or its notes at once, naming it', async () => {
    for (const at of ['', '.handled']) {
      for (const plant of ['fifo', 'link']) {
        const tokenFile = await tokenAt('t0')
        const path = tokenFile + at
        await rm(path, { force: true })
        if (plant === 'fifo') execFileSync('mkfifo', [path])
        else {
          await writeFile(join(dirname(path), 'other'), at === '' ? 't0' : '$1\n')
          await symlink(join(dirname(path), 'other'), path)
        }
        const closing = new AbortController()
        const err = await Sync.open(homeserver({ '!room': [message('$1')] }), { userId: '@a:localhost', tokenFile, pollMs: 10, logger: silentLogger, signal: closing.signal }).catch((e: unknown) => e)
        expect(err).toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(path) })
        expect(String(err)).toContain('move it away')
      }
    }
  }, 5_000)

  // Found in review: saving a token emptied its notes with writeFile, which waited for good on a
  // FIFO there and followed a link, emptying the linked file.
  it('empties the notes of handled events as a new file when it saves a token: a FIFO or a link there is replaced, neither waited on nor followed', async () => {
    const first = { http: { authedRequest: async (_method: string, path: string) => path === '/sync' ? { next_batch: 't0' } : { joined_rooms: [] } } } as unknown as MatrixClient
    for (const plant of ['fifo', 'link']) {
      const tokenFile = join(await mkdtemp(join(tmpdir(), 'conclave-sync-')), 'sync-token')
      const other = join(dirname(tokenFile), 'other')
      if (plant === 'fifo') execFileSync('mkfifo', [tokenFile + '.handled'])
      else {
        await writeFile(other, '$1\n')
        await symlink(other, tokenFile + '.handled')
      }
      await Sync.open(first, { userId: '@a:localhost', tokenFile, pollMs: 10, logger: silentLogger, signal: new AbortController().signal })
      expect(await readFile(tokenFile, 'utf8')).toBe('t0')
      expect(lstatSync(tokenFile + '.handled').isFile()).toBe(true)
      expect(await readFile(tokenFile + '.handled', 'utf8')).toBe('')
      if (plant === 'link') expect(await readFile(other, 'utf8')).toBe('$1\n')
    }
  }, 5_000)

  // Found red-teaming: the token moved on a batch at a time, so a process killed in the middle of
  // one was handed all of it again, and a block its copy had refused was judged again against
  // the blocks that came after it, and kept.
  it('hands over again, after a kill in the middle of a batch, only the events not yet handled', async () => {
    const tokenFile = await tokenAt('t0')
    const client = homeserver({ '!room': [message('$1'), message('$2'), message('$3')] })
    // Killed while it handles $2.
    expect(await syncing(client, tokenFile, async delivered => delivered.length <= 1 ? undefined : never)).toEqual(['$1', '$2', '$3'])
    expect(await readFile(tokenFile, 'utf8')).toBe('t0')
    expect(await syncing(client, tokenFile)).toEqual(['$2', '$3'])
    expect(await readFile(tokenFile, 'utf8')).toBe('t1')
  })

  // Found red-teaming that: the events before my join in the batch I joined a room in were not
  // noted, so a restart (which counts a joined room at once) handed over that history; nor were
  // they when an event of another room ahead of them was still being handled; nor is anything
  // noted when the process is killed after it joined and before the /sync that carries its join.
  it.each([
    ['killed while it handles the first event after my join', { '!room': [message('$old'), myJoin, message('$2')] }, ['$2']],
    ['killed while it handles another room\'s event ahead of the batch I joined in', { '!lobby': [message('$L')], '!room': [message('$old'), myJoin, message('$2')] }, ['$L', '$2']]
  ])('does not hand over a room\'s events from before my join after a restart: %s', async (_case, timelines, firstRun) => {
    const tokenFile = await tokenAt('t0')
    const client = homeserver(timelines, '!room')
    expect(await syncing(client, tokenFile, async delivered => delivered.length === 0 ? undefined : never)).toEqual(firstRun)
    expect(await syncing(client, tokenFile)).not.toContain('$old')
  })

  it('does not hand over a room\'s events from before my join after a kill between joining it and the /sync that carries my join', async () => {
    const tokenFile = await tokenAt('t0')
    // The room counts at once (it is among my rooms): my join is handed over as any event there, and what came before it is not.
    expect(await syncing(homeserver({ '!room': [message('$old'), myJoin, message('$2')] }), tokenFile)).toEqual(['$join', '$2'])
  })

  it('takes a change of my display name for no join: what came before it in the batch is handed over', async () => {
    const renamed: TimelineEvent = { ...myJoin, event_id: '$renamed', unsigned: { prev_content: { membership: 'join' } } }
    expect(await syncing(homeserver({ '!room': [message('$1'), renamed, message('$2')] }), await tokenAt('t0'))).toEqual(['$1', '$renamed', '$2'])
  })

  // Found red-teaming: a batch holding more than the timeline limit comes `limited`, its earlier
  // events left out, and they were lost with a warning: a flood hid a researcher's !pause or 👍.
  describe('a batch that left events out (limited)', () => {
    const flooded = (message: (id: string) => TimelineEvent) => ({ '!room': { timeline: { events: [message('$4'), message('$5')], limited: true, prev_batch: 'p1' } } })
    /** A homeserver whose /sync after t0 is `join` (token t1), and whose /messages of !room pages forward from t0 through `pages` (keyed by `from`). */
    function history (join: unknown, pages: Record<string, { chunk: TimelineEvent[], end?: string } | Error>, asked: unknown[] = []): MatrixClient {
      return {
        http: {
          authedRequest: async (_method: string, path: string, query?: { since?: string, from?: string }) => {
            if (path === '/joined_rooms') return { joined_rooms: ['!room', '!quiet'] }
            if (path === '/rooms/!room/messages') {
              asked.push(query)
              const page = pages[query?.from ?? ''] ?? { chunk: [] }
              if (page instanceof Error) throw page
              return page
            }
            if (query?.since === 't0') return { next_batch: 't1', rooms: { join } }
            await new Promise(resolve => setTimeout(resolve, 20))
            return { next_batch: query?.since }
          }
        }
      } as unknown as MatrixClient
    }

    it('fetches what it left out from the room\'s history, from the last batch on, and hands over first, in order, what was not handled yet', async () => {
      const tokenFile = await tokenAt('t0')
      await writeFile(tokenFile + '.handled', '$1\n') // handled before a restart
      const asked: unknown[] = []
      const client = history(flooded(message), { t0: { chunk: [message('$0'), message('$1')], end: 'q1' }, q1: { chunk: [message('$2'), message('$3')], end: 'q2' } }, asked)
      expect(await syncing(client, tokenFile)).toEqual(['$0', '$2', '$3', '$4', '$5'])
      expect(asked).toEqual(['t0', 'q1', 'q2'].map(from => ({ dir: 'f', from, to: 'p1', limit: '1000' })))
    })

    // Found red-teaming the first version: after a restart a room I had joined counts at once,
    // and the gap's pages went back past my join into the room's history before it.
    it('hands over nothing from before my join in the gap, also in a room that counts at once after a restart', async () => {
      const client = history(flooded(message), { t0: { chunk: [message('$before'), myJoin, message('$2')], end: 'q1' } })
      expect(await syncing(client, await tokenAt('t0'))).toEqual(['$join', '$2', '$4', '$5'])
    })

    it('fetches the gap of a room whose join the batch names only in its state, from my join on', async () => {
      const join = { '!room': { state: { events: [myJoin] }, timeline: { events: [message('$4')], limited: true, prev_batch: 'p1' } } }
      const tokenFile = await tokenAt('t0')
      const client = history(join, { t0: { chunk: [message('$before'), myJoin, message('$2')] } })
      // A room not among my rooms yet when I started: it counts from my join.
      const joinedLater = { http: { authedRequest: async (method: string, path: string, query?: object) => path === '/joined_rooms' ? { joined_rooms: [] } : (client.http.authedRequest as (...a: unknown[]) => Promise<unknown>)(method, path, query) } } as unknown as MatrixClient
      expect(await syncing(joinedLater, tokenFile)).toEqual(['$join', '$2', '$4'])
    })

    // Found red-teaming the first version: one room's history failing to load held up every room and the token.
    it('a gap that cannot be fetched holds up neither the batch, the other rooms nor the token: it is lost (a warning says so)', async () => {
      const tokenFile = await tokenAt('t0')
      const client = history({ ...flooded(message), '!quiet': { timeline: { events: [message('$resume')] } } }, { t0: new MatrixError({ errcode: 'M_UNKNOWN', error: 'boom' }, 500) })
      expect(await syncing(client, tokenFile)).toEqual(['$4', '$5', '$resume'])
      expect(await readFile(tokenFile, 'utf8')).toBe('t1')
    })

    // Found red-teaming the second version: a gap full before my join came was handed over, history and all.
    it('hands over nothing from before my join however much came before it in the gap: 10,001 events, or 33 MiB', async () => {
      const before = Array.from({ length: 10_001 }, (_, i) => message(`$pre${i}`))
      const pages = Object.fromEntries(Array.from({ length: 11 }, (_, p) => [p === 0 ? 't0' : `q${p}`, { chunk: p < 10 ? before.slice(p * 1000, (p + 1) * 1000) : [...before.slice(10_000), myJoin, message('$after')], end: `q${p + 1}` }]))
      expect(await syncing(history(flooded(message), pages), await tokenAt('t0'))).toEqual(['$join', '$after', '$4', '$5'])
      const big = (id: string): TimelineEvent => ({ ...message(id), content: { body: 'x'.repeat(60_000) } })
      const join = { '!room': { state: { events: [myJoin] }, timeline: { events: [message('$4')], limited: true, prev_batch: 'p1' } } }
      const client = history(join, { t0: { chunk: [...Array.from({ length: 600 }, (_, i) => big(`$big${i}`)), myJoin, message('$after')] } })
      const joinedLater = { http: { authedRequest: async (method: string, path: string, query?: object) => path === '/joined_rooms' ? { joined_rooms: [] } : (client.http.authedRequest as (...a: unknown[]) => Promise<unknown>)(method, path, query) } } as unknown as MatrixClient
      expect(await syncing(joinedLater, await tokenAt('t0'))).toEqual(['$join', '$after', '$4'])
    })

    // Found red-teaming the second version: the ids reloaded from the notes after a kill were kept
    // only up to 10,000, fewer than one batch and its gap hold, so the earliest handled came again.
    it('after a kill in the middle of a batch with a full gap, hands over again only what was not handled', async () => {
      const gap = Array.from({ length: 10_000 }, (_, i) => message(`$f${i}`))
      const pages = Object.fromEntries(Array.from({ length: 10 }, (_, p) => [p === 0 ? 't0' : `q${p}`, { chunk: gap.slice(p * 1000, (p + 1) * 1000), end: `q${p + 1}` }]))
      const tokenFile = await tokenAt('t0')
      // Killed while it handles $5: every event before it was handled and noted.
      const first = await syncing(history(flooded(message), pages), tokenFile, async delivered => delivered.length <= 10_001 ? undefined : never)
      expect(first).toHaveLength(10_002)
      await vi.waitFor(async () => { expect((await readFile(tokenFile + '.handled', 'utf8')).split('\n').filter(l => l.length > 0)).toHaveLength(10_001) }, { timeout: 60_000 })
      expect(await readFile(tokenFile, 'utf8')).toBe('t0')
      expect(await syncing(history(flooded(message), pages), tokenFile)).toEqual(['$5'])
    }, 120_000)

    it('keeps the earliest it left out, up to 10,000 events', async () => {
      const pages = Object.fromEntries(Array.from({ length: 11 }, (_, p) => [p === 0 ? 't0' : `q${p}`, { chunk: Array.from({ length: 1000 }, (_, i) => message(`$f${p * 1000 + i}`)), end: `q${p + 1}` }]))
      const delivered = await syncing(history(flooded(message), pages), await tokenAt('t0'))
      expect(delivered.slice(0, 3)).toEqual(['$f0', '$f1', '$f2'])
      expect(delivered).toHaveLength(10_002)
      expect(delivered.slice(-3)).toEqual(['$f9999', '$4', '$5'])
    })
  })
})
