import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import type { Logger } from '../../src/core/logger.ts'
import { createIdentity, peekRecord } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Block, Ledger } from '../../src/ledger/index.ts'
import { Gaps, MAX_ASKS, type Gap } from '../../src/ledger/gaps.ts'
import { openReplica, type ReplicaOptions } from '../../src/ledger/replica.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import type { Bus, BusMessage, ReplicaBlock } from '../../src/transport/index.ts'
import { all, eventually, forge, vote } from './helpers.ts'

const ROOM = 'fed-fetch'
const who = createIdentity(randomSecretKey())
const sign = async (n: number, now?: number): Promise<string> => who.sign(vote(n), { now })
const publish = async (bus: Bus, block: ReplicaBlock): Promise<void> => { await bus.publish(ROOM, { kind: 'block', block }) }
const quiet: Logger = { info () {}, warn () {} }

/** A copy on `bus` whose clock reads `clock()`, asking for missing parents every 50 ms. */
async function copyOn (bus: Bus, clock: () => number, options: Partial<ReplicaOptions> = {}): Promise<Ledger> {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-fetch-'))
  return openReplica({ dir, bus, room: ROOM, difficulty: 4, clock, askMs: 50, logger: quiet, ...options })
}

/** Every message published on `bus`, as it goes by. */
async function tap (bus: Bus): Promise<BusMessage[]> {
  const seen: BusMessage[] = []
  await bus.subscribe(ROOM, m => { seen.push(m) })
  return seen
}

/**
 * Publishes each block given it on `bus` and waits until `copies` (subscribed before this is
 * called) have ingested it, before the next block and before time moves on.
 */
async function delivering (bus: Bus, ...copies: Ledger[]): Promise<(block: ReplicaBlock) => Promise<void>> {
  const seen = await tap(bus)
  return async block => {
    const count = seen.length + 1
    await publish(bus, block)
    expect(await eventually(async () => seen.length === count)).toBe(true)
    for (const copy of copies) await copy.get(block.id, { wait: false })
  }
}

describe('replicas fetch parents they lack from each other', () => {
  it('a block dated right at the 60 s bound no longer splits copies whose clocks differ by a second', async () => {
    const bus = createLocalBus()
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1)
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      // One member dates its block exactly at the bound of the copy whose clock is ahead:
      // that copy keeps it, the one a second behind refuses it as dated 61 s ahead.
      const edge = await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 })
      await publish(bus, edge)
      expect((await all(ahead)).map(b => b.id)).toEqual([genesis.id, edge.id])
      expect((await all(behind)).map(b => b.id)).toEqual([genesis.id])
      // Seconds later an honest member's copy appends: its block approves the edge block.
      now += 5
      const honest = await ahead.append(await sign(2, now))
      expect(honest.parents).toContain(edge.id)
      // The copy behind asks the room for the parent it lacks, by now no longer dated ahead of it.
      expect(await eventually(async () => (await all(behind)).length === 3)).toBe(true)
      expect((await all(behind)).map(b => b.id)).toEqual([genesis.id, edge.id, honest.id])
      expect(await behind.verify()).toMatchObject({ ok: true })
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming: a copy that refused a block as dated ahead took it later, when it came
  // again, so copies whose clocks differ held it at different places in their order; where the
  // order decides (a vote before or after its decision) they could disagree. On a bus that says
  // when the room took each message (a Matrix room: the homeserver's time), every copy judges a
  // block's date by that time, so each takes it at the same place.
  it.each([
    ['the room\'s time at the copy ahead: both keep it when it first comes', 0],
    ['the room\'s time a second behind: both refuse it, and both keep it when it comes again', -1]
  ])('a block dated at the 60 s bound lands at one place in every copy\'s order, on a bus that gives the room\'s time (%s)', async (_, offset) => {
    let now = 1_800_000_000
    const bus = createLocalBus({ clock: () => now + offset })
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1)
    const deliver = await delivering(bus, ahead, behind)
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await deliver(genesis)
      const edge = await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 })
      await deliver(edge)
      const beside = await forge(await sign(2, now), [genesis.id], { time: now })
      await deliver(beside)
      // Seconds later the edge block comes again (a copy holding it answers a want).
      now += 5
      await deliver(edge)
      const order = async (copy: Ledger): Promise<string[]> => (await all(copy)).map(b => b.id)
      expect(await order(ahead)).toEqual(offset === 0 ? [genesis.id, edge.id, beside.id] : [genesis.id, beside.id, edge.id])
      expect(await order(behind)).toEqual(await order(ahead))
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming: a first version judged by its own clock where the room's time ran over
  // 10 s ahead of it, so copies a second apart on either side of that line split again.
  it.each([
    ['the room 10 s ahead of copies a second apart', 10, 0, -1],
    ['the room in time, one copy 11 s behind it', 0, 0, -11],
    ['the room a minute behind both copies', -60, 0, -1]
  ])('judges a block\'s date by the room\'s time whatever its own clock: %s', async (_, roomOffset, aOffset, bOffset) => {
    let now = 1_800_000_000
    const bus = createLocalBus({ clock: () => now + roomOffset })
    const a = await copyOn(bus, () => now + aOffset)
    const b = await copyOn(bus, () => now + bOffset)
    const deliver = await delivering(bus, a, b)
    try {
      const genesis = await forge(await sign(0, now + roomOffset), [], { time: now + roomOffset })
      await deliver(genesis)
      const t = now + roomOffset + 60
      const edge = await forge(await sign(1, t), [genesis.id], { time: t })
      await deliver(edge)
      const over = await forge(await sign(2, t + 1), [genesis.id], { time: t + 1 })
      await deliver(over)
      const order = async (copy: Ledger): Promise<string[]> => (await all(copy)).map(x => x.id)
      expect(await order(a)).toEqual([genesis.id, edge.id])
      expect(await order(b)).toEqual(await order(a))
      now += 20
      await deliver(over)
      expect(await order(a)).toEqual([genesis.id, edge.id, over.id])
      expect(await order(b)).toEqual(await order(a))
    } finally {
      await a.close()
      await b.close()
      await bus.close()
    }
  })

  // Found red-teaming: a member's block was dated as its newest parent, so one member dating a
  // block at the room's bound made the next block of a member whose clock runs a second behind
  // the room's lie 61 s after its record's signing: kept, and its record refused by the federation.
  it('a member\'s block approves no block dated past its record\'s signing + 60 s, so the federation does not refuse its record for a parent dated ahead', async () => {
    const now = 1_800_000_000
    const bus = createLocalBus({ clock: () => now })
    const copy = await copyOn(bus, () => now - 1)
    const hostile = createIdentity(randomSecretKey())
    const seen = await tap(bus)
    try {
      const genesis = await forge(await sign(0, now - 1), [], { time: now - 1 })
      await publish(bus, genesis)
      const proposal = await forge(await sign(1, now - 1), [genesis.id], { time: now - 1 })
      await publish(bus, proposal)
      const edge = await forge(await hostile.sign(vote(2), { now: now + 60 }), [proposal.id], { time: now + 60 })
      await publish(bus, edge)
      expect(await eventually(async () => seen.length === 3)).toBe(true)
      expect((await all(copy)).map(b => b.id)).toEqual([genesis.id, proposal.id, edge.id])
      for (const after of [undefined, proposal.id]) {
        const jwt = await sign(3 + (after === undefined ? 0 : 1), now - 1)
        const block = await copy.append(jwt, { after })
        expect(block.parents).not.toContain(edge.id)
        expect(block.time - (peekRecord(jwt).issuedAt ?? 0)).toBeLessThanOrEqual(60)
        if (after !== undefined) expect(block.parents.some(p => p === after) || (await copy.descends(block.id, after))).toBe(true)
      }
    } finally {
      await copy.close()
      await bus.close()
    }
  })

  it('catching up on what the room took an hour ago, judges each block\'s date by the room\'s time then, as the copies that were live did', async () => {
    const now = 1_800_000_000
    let room = now - 3700
    const bus = createLocalBus({ clock: () => room })
    const copy = await copyOn(bus, () => now)
    const delivered = await delivering(bus, copy)
    const deliver = async (block: ReplicaBlock): Promise<string[]> => {
      await delivered(block)
      return (await all(copy)).map(b => b.id)
    }
    try {
      const genesis = await forge(await sign(0, room), [], { time: room })
      expect(await deliver(genesis)).toEqual([genesis.id])
      room += 100
      // 61 s ahead of the room's time then: refused; 60 s: kept (the copy's clock, an hour later, would keep both).
      const over = await forge(await sign(1, room + 61), [genesis.id], { time: room + 61 })
      expect(await deliver(over)).toEqual([genesis.id])
      const at = await forge(await sign(2, room + 60), [genesis.id], { time: room + 60 })
      expect(await deliver(at)).toEqual([genesis.id, at.id])
    } finally {
      await copy.close()
      await bus.close()
    }
  })

  it('asks for a block someone waits on (an announced record\'s) that it refused as dated ahead, once it no longer is', async () => {
    const bus = createLocalBus()
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 5)
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      const edge = await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 })
      await publish(bus, edge)
      // The last block of a run, dated as its newest parent: 65 s ahead of the copy behind, which refuses it, and nothing comes after it.
      const last = await ahead.append(await sign(2, now))
      expect(await behind.get(last.id, { wait: false })).toBeUndefined()
      // Its record is announced, and the member behind waits for its block.
      const waited = behind.get(last.id)
      await new Promise(resolve => setTimeout(resolve, 200))
      now += 10
      expect(await waited).toMatchObject({ id: last.id })
      expect((await all(behind)).map(b => b.id)).toEqual([genesis.id, edge.id, last.id])
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming: the lag bound is measured from each copy's newest block, so a block
  // dated 301 s before one at the ahead bound was refused for good by the copies that held
  // that one, and kept by the others, whose honest blocks then approved it. The waiver first
  // looked at the block's own children only, and one more block of the member's own, between
  // it and the honest block, got round it.
  it.each([0, 1, 2])('takes a parent dated past its lag bound when another member\'s block waits for it, through %i of the member\'s own blocks: a block at the lag edge no longer splits copies for good', async (between) => {
    const bus = createLocalBus()
    const hostile = createIdentity(randomSecretKey())
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1)
    try {
      const genesis = await forge(await sign(0, now - 400), [], { time: now - 400 })
      await publish(bus, genesis)
      const recent = await forge(await sign(1, now), [genesis.id], { time: now })
      await publish(bus, recent)
      const edge = await forge(await hostile.sign(vote(2), { now: now + 60 }), [recent.id], { time: now + 60 })
      await publish(bus, edge)
      // 301 s before the edge block: past the lag bound of the copy that holds it, not of the other.
      let back = await forge(await hostile.sign(vote(3), { now: now - 241 }), [genesis.id], { time: now - 241 })
      await publish(bus, back)
      expect(await ahead.get(back.id, { wait: false })).toBeUndefined()
      expect(await behind.get(back.id, { wait: false })).toBeDefined()
      for (let i = 0; i < between; i++) {
        back = await forge(await hostile.sign(vote(10 + i), { now: now - 241 }), [back.id], { time: now - 241 })
        await publish(bus, back)
      }
      now += 5
      const honest = await behind.append(await sign(4, now - 1))
      expect(honest.parents).toContain(back.id)
      expect(await eventually(async () => (await ahead.get(honest.id, { wait: false })) !== undefined)).toBe(true)
      // The next block of the copy ahead approves the edge block, which the copy behind then takes.
      const next = await ahead.append(await sign(7, now))
      expect(await eventually(async () => (await behind.get(next.id, { wait: false })) !== undefined)).toBe(true)
      const sorted = async (l: Ledger): Promise<string[]> => (await all(l)).map(b => b.id).sort()
      expect(await sorted(ahead)).toEqual(await sorted(behind))
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming: a bound on the waiver (two ahead bounds past the lag) assumed copies'
  // newest blocks differ by at most that; after a quiet spell with a block dated ahead they differ more.
  it('takes a parent far past its lag bound after a quiet spell, when another member\'s block waits for it: copies whose newest blocks lie 130 s apart do not split', async () => {
    const bus = createLocalBus()
    const hostile = createIdentity(randomSecretKey())
    const t0 = 1_800_000_000
    let now = t0
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1)
    try {
      const genesis = await forge(await sign(0, t0 - 400), [], { time: t0 - 400 })
      await publish(bus, genesis)
      const recent = await forge(await sign(1, t0), [genesis.id], { time: t0 })
      await publish(bus, recent)
      // 70 s with nothing anchored (members training), then a block at the bound of the copy ahead, which only it keeps.
      now = t0 + 70
      const edge = await forge(await hostile.sign(vote(2), { now: now + 60 }), [recent.id], { time: now + 60 })
      await publish(bus, edge)
      expect(await behind.get(edge.id, { wait: false })).toBeUndefined()
      // 429 s before the newest block of the copy ahead, 299 s before the other's.
      const back = await forge(await hostile.sign(vote(3), { now: t0 - 299 }), [genesis.id], { time: t0 - 299 })
      await publish(bus, back)
      expect(await ahead.get(back.id, { wait: false })).toBeUndefined()
      now += 5
      const honest = await behind.append(await sign(4, now - 1))
      expect(honest.parents).toContain(back.id)
      expect(await eventually(async () => (await ahead.get(honest.id, { wait: false })) !== undefined)).toBe(true)
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  it('keeps refusing a block dated past its lag bound that only its own signer\'s waiting blocks approve; a colluder\'s block waiting for it has it kept (README: not stopped)', async () => {
    const bus = createLocalBus()
    const [a, b] = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey())]
    const now = 1_800_000_000
    const copy = await copyOn(bus, () => now)
    try {
      const genesis = await forge(await sign(0, now - 20_000), [], { time: now - 20_000 })
      await publish(bus, genesis)
      await publish(bus, await forge(await sign(1, now), [genesis.id], { time: now }))
      const kept: boolean[] = []
      for (const voucher of [a, b]) {
        const back = await forge(await a.sign(vote(voucher === a ? 2 : 3), { now: now - 10_000 }), [genesis.id], { time: now - 10_000 })
        await publish(bus, await forge(await voucher.sign(vote(voucher === a ? 4 : 5), { now }), [back.id], { time: now }))
        await publish(bus, back)
        kept.push(await copy.get(back.id, { wait: false }) !== undefined)
      }
      expect(kept).toEqual([false, true])
    } finally {
      await copy.close()
      await bus.close()
    }
  })

  // Found red-teaming: every waited-for block was asked for on one shared share, so ten
  // announcements of made-up block ids an interval kept the member from asking for the one it needed.
  // Found red-teaming: a stranger re-announcing records of the member's it saw go by, under
  // made-up block ids, had them waited for on the member's share, as its own genuine gap was.
  it.each([
    ['a member waiting on ten made-up ids an interval', false],
    ['anyone re-announcing ten of the member\'s records this copy holds under made-up ids an interval', true]
  ])('asks for a waited-for block on behalf of the signer it is waited for: %s does not starve it', async (_attack, rewrapped) => {
    const bus = createLocalBus()
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 5, { waitMs: 1500 })
    let stop = false
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      await publish(bus, await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 }))
      const last = await ahead.append(await sign(2, now))
      expect(await behind.get(last.id, { wait: false })).toBeUndefined()
      // A hostile member announces records of its own under block ids nobody holds, or anyone
      // announces the member's records this copy holds (its participant waits on the record's signer's behalf).
      const fake = rewrapped ? { signer: who.did, record: genesis.record } : { signer: 'hostile' }
      const fakes = (async () => {
        while (!stop) {
          for (let i = 0; i < 10; i++) void behind.get(randomBytes(32).toString('hex'), fake)
          await new Promise(resolve => setTimeout(resolve, 50))
        }
      })()
      await new Promise(resolve => setTimeout(resolve, 500))
      const waited = behind.get(last.id, { signer: who.did })
      now += 10
      const got = await waited
      stop = true
      await fakes
      expect(got).toMatchObject({ id: last.id })
    } finally {
      stop = true
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming the first version, which also took a record waiting under another block
  // as held: a stranger's re-wrap of a record, waiting in a copy that refused the record's own
  // block as dated ahead, then had that block's announcement refused, and never asked for.
  it('still asks for an announced record\'s block that it refused as dated ahead while a stranger\'s re-wrap of the record waits', async () => {
    const bus = createLocalBus()
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1, { waitMs: 2000 })
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      const genuine = await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 })
      await publish(bus, genuine)
      expect(await behind.get(genuine.id, { wait: false })).toBeUndefined()
      await publish(bus, await forge(genuine.record, [randomBytes(32).toString('hex')], { time: now }))
      const waited = behind.get(genuine.id, { signer: who.did, record: genuine.record })
      now += 5
      expect(await waited).toMatchObject({ id: genuine.id })
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  it('forgets a refused waiting block on every parent it waited for: a block then waited for is still asked for', async () => {
    const bus = createLocalBus()
    const seen = await tap(bus)
    const now = Math.floor(Date.now() / 1000)
    const copy = await copyOn(bus, () => now, { founder: who.did })
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      // A block waiting for two parents, one of which comes and is refused (a stranger's): it is refused with it.
      const stranger = await forge(await createIdentity(randomSecretKey()).sign(vote(1), { now }), [genesis.id], { time: now })
      const other = 'c'.repeat(64)
      await publish(bus, await forge(await sign(2, now), [stranger.id, other], { time: now }))
      await publish(bus, stranger)
      expect(await copy.get(stranger.id, { wait: false })).toBeUndefined()
      // Someone then waits for the other parent: the copy asks the room for it.
      void copy.get(other, { signer: who.did })
      expect(await eventually(async () => seen.some(m => m.kind === 'want' && m.block === other), 2000)).toBe(true)
    } finally {
      await copy.close()
      await bus.close()
    }
  })

  it('asks MAX_ASKS times for a parent nobody holds, the waits doubling, then gives up', async () => {
    const bus = createLocalBus()
    const seen = await tap(bus)
    const now = Math.floor(Date.now() / 1000)
    const copies = [await copyOn(bus, () => now, { askMs: 5 }), await copyOn(bus, () => now, { askMs: 5 })]
    try {
      const nowhere = 'f'.repeat(64)
      await publish(bus, await forge(await sign(1, now), [nowhere], { time: now }))
      // 1 + 2 + 4 + … + 32 intervals of 5 ms: each copy's last ask comes after about 0.3 s,
      // or later where one waits again on hearing the other's ask.
      const wants = (): BusMessage[] => seen.filter(m => m.kind === 'want')
      expect(await eventually(async () => wants().length === 2 * MAX_ASKS, 20_000)).toBe(true)
      await new Promise(resolve => setTimeout(resolve, 1000))
      expect(wants()).toHaveLength(2 * MAX_ASKS)
      expect(wants().every(m => m.kind === 'want' && m.block === nowhere)).toBe(true)
    } finally {
      for (const c of copies) await c.close()
      await bus.close()
    }
  })

  it('asks for a member\'s gap while another member\'s blocks name 100 parents nobody holds', async () => {
    const bus = createLocalBus()
    const seen = await tap(bus)
    let now = 1_800_000_000
    const ahead = await copyOn(bus, () => now)
    const behind = await copyOn(bus, () => now - 1)
    const flooder = createIdentity(randomSecretKey())
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      for (let i = 0; i < 100; i++) await publish(bus, await forge(await flooder.sign(vote(100 + i), { now }), [randomBytes(32).toString('hex')], { time: now }))
      const edge = await forge(await sign(1, now + 60), [genesis.id], { time: now + 60 })
      await publish(bus, edge)
      expect(await behind.get(edge.id, { wait: false })).toBeUndefined()
      expect(await ahead.get(edge.id, { wait: false })).toBeDefined()
      now += 5
      const from = seen.length
      const honest = await ahead.append(await sign(2, now))
      expect(await eventually(async () => (await behind.get(honest.id, { wait: false })) !== undefined)).toBe(true)
      // The flooder's blocks get two asks an interval from each copy: the honest gap is asked
      // for among the first few wants once it is one, not after the flooder's hundred (16 an interval in all).
      const wants = seen.slice(from).flatMap(m => m.kind === 'want' ? [m.block] : [])
      expect(wants.indexOf(edge.id)).toBeGreaterThanOrEqual(0)
      expect(wants.indexOf(edge.id)).toBeLessThan(16)
    } finally {
      await ahead.close()
      await behind.close()
      await bus.close()
    }
  })

  // Found red-teaming: a gap was charged to the signer of the first block waiting for it, so a
  // member that made one of its blocks wait first on an honest gap, beside 255 gaps of its own,
  // had it asked for after 700 intervals: past the lag bound, so it was then refused for good.
  it('asks for a gap on behalf of any signer waiting for it: a member waiting first on an honest gap beside 255 of its own does not delay it', async () => {
    vi.useFakeTimers()
    try {
      const asked: Array<{ tick: number, id: string }> = []
      let tick = 0
      const theirs: Gap[] = Array.from({ length: 255 }, (_, i) => ({ id: `own-${i}`, signers: new Set(['hostile']) }))
      const gaps = new Gaps({ askMs: 2000, logger: quiet, publish: async m => { if (m.kind === 'want') asked.push({ tick, id: m.block }) } },
        () => [...theirs, { id: 'edge', signers: new Set(['hostile', 'honest']) }])
      for (tick = 1; tick <= 4; tick++) await vi.advanceTimersByTimeAsync(2000)
      gaps.close()
      // Every gap waits an interval, then is asked: the honest one at once, two of the member's own
      // an interval. The honest gap is asked again two intervals later.
      expect(asked.filter(a => a.id === 'edge')).toEqual([{ tick: 2, id: 'edge' }, { tick: 4, id: 'edge' }])
      expect(asked.filter(a => a.id !== 'edge' && a.tick === 2)).toHaveLength(2)
    } finally { vi.useRealTimers() }
  })

  // Anyone in the room asking for 64 held blocks an interval used up every copy's answers (64 an
  // interval) while it went on, so a copy that lacked a parent never got it from anyone.
  it('answers one asker at most 16 blocks an interval: a flood from one account leaves the rest for the other copies\' asks', async () => {
    vi.useFakeTimers()
    try {
      const sent: string[] = []
      const gaps = new Gaps({ askMs: 2000, logger: quiet, publish: async m => { if (m.kind === 'block') sent.push(m.block.id) } }, () => [])
      const held = (n: number): Block => ({ id: n.toString(16).padStart(64, '0'), seq: n, parents: [], record: `r${n}`, time: 1, pow: 0 })
      for (let n = 1; n <= 64; n++) gaps.answer(held(n), '@flood:lab')
      gaps.answer(held(100), '@agent-2:lab')
      expect(sent).toHaveLength(17)
      expect(sent.at(-1)).toBe(held(100).id)
      // The flooder's next ones wait for the next interval; an asker the bus does not name shares only the interval's 64.
      await vi.advanceTimersByTimeAsync(2000)
      for (let n = 17; n <= 40; n++) gaps.answer(held(n), '@flood:lab')
      for (let n = 200; n < 300; n++) gaps.answer(held(n))
      expect(sent).toHaveLength(17 + 16 + 48)
      gaps.close()
    } finally { vi.useRealTimers() }
  })

  // Found on the "not stopped" list: four or more accounts flooding wants together used up a
  // copy's 64 answers an interval, and a member's copy that lacked a parent got it from nobody.
  // The federation's own accounts now each keep their 16, whoever else floods.
  it('keeps each member account\'s 16 answers an interval whoever else floods: strangers share 64, a hostile member has its own 16', async () => {
    vi.useFakeTimers()
    try {
      const sent: string[] = []
      const members = ['@agent-1:lab', '@agent-2:lab', '@agent-3:lab']
      const gaps = new Gaps({ askMs: 2000, logger: quiet, publish: async m => { if (m.kind === 'block') sent.push(m.block.id) }, members }, () => [])
      const held = (n: number): Block => ({ id: n.toString(16).padStart(64, '0'), seq: n, parents: [], record: `r${n}`, time: 1, pow: 0 })
      // Ten strangers' accounts and a hostile member each ask for 40 blocks, then an honest member for 16.
      for (let a = 0; a < 10; a++) for (let n = 0; n < 40; n++) gaps.answer(held(1000 * (a + 1) + n), `@flood-${a}:lab`)
      for (let n = 0; n < 40; n++) gaps.answer(held(20_000 + n), '@agent-3:lab')
      for (let n = 0; n < 16; n++) gaps.answer(held(30_000 + n), '@agent-2:lab')
      expect(sent).toHaveLength(64 + 16 + 16)
      expect(sent.slice(-16)).toEqual(Array.from({ length: 16 }, (_, n) => held(30_000 + n).id))
      gaps.close()
    } finally { vi.useRealTimers() }
  })

  it('answers a flood of wants for a block with one copy of it per copy and interval', async () => {
    const bus = createLocalBus()
    const seen = await tap(bus)
    const now = Math.floor(Date.now() / 1000)
    const copies = [await copyOn(bus, () => now, { askMs: 60_000 }), await copyOn(bus, () => now, { askMs: 60_000 })]
    try {
      const genesis = await forge(await sign(0, now), [], { time: now })
      await publish(bus, genesis)
      for (let i = 0; i < 200; i++) await bus.publish(ROOM, { kind: 'want', block: genesis.id })
      for (let i = 0; i < 200; i++) await bus.publish(ROOM, { kind: 'want', block: 'e'.repeat(64) })
      expect(await eventually(async () => seen.filter(m => m.kind === 'block').length === 3)).toBe(true)
      await new Promise(resolve => setTimeout(resolve, 200))
      expect(seen.filter(m => m.kind === 'block').map(m => m.kind === 'block' && m.block.id)).toEqual([genesis.id, genesis.id, genesis.id])
    } finally {
      for (const c of copies) await c.close()
      await bus.close()
    }
  })
})
