import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import type { Logger } from '../../src/core/logger.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Ledger } from '../../src/ledger/index.ts'
import { MAX_ORPHANS_PER_SENDER, openReplica, type ReplicaOptions } from '../../src/ledger/replica.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import type { Bus, ReplicaBlock } from '../../src/transport/index.ts'
import { peekRecord } from '../../src/identity/verify.ts'
import { all, charterOf, forge, refusals, vote } from './helpers.ts'

const peekFederation = (jwt: string): string | undefined => peekRecord(jwt).record?.federation

/** How many signatures the replica checked: the cost of ingesting a block, counted rather than timed. */
const signatures = vi.hoisted(() => ({ checked: 0 }))
vi.mock('../../src/identity/index.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/identity/index.ts')>()
  return {
    ...actual,
    verifyRecord: async (...args: Parameters<typeof actual.verifyRecord>) => {
      signatures.checked++
      return actual.verifyRecord(...args)
    }
  }
})

const ROOM = 'fed-flood'
const FLOOD = 10_050
const founder = createIdentity(randomSecretKey())
const honest = createIdentity(randomSecretKey())
const hostile = createIdentity(randomSecretKey())
const stranger = createIdentity(randomSecretKey())
const charter = charterOf([founder.did, honest.did, hostile.did])

const tally = refusals

/**
 * A flood of blocks whose parents never come, from one signer: FLOOD records it signed (made
 * by `record`), each under a different (never published) parent, each block honestly mined.
 */
async function flood (record: (i: number) => Promise<string>): Promise<ReplicaBlock[]> {
  const blocks: ReplicaBlock[] = []
  for (let i = 0; i < FLOOD; i++) blocks.push(await forge(await record(i), [randomBytes(32).toString('hex')]))
  return blocks
}

describe('a replica under a flood of orphan blocks', () => {
  async function opened (logger: Logger, options: Partial<ReplicaOptions> = {}): Promise<{ bus: Bus, ledger: Ledger, close: () => Promise<void> }> {
    const bus = createLocalBus()
    const ledger = await openReplica({ dir: await mkdtemp(join(tmpdir(), 'conclave-flood-')), bus, room: ROOM, difficulty: 4, founder: founder.did, logger, ...options })
    return { bus, ledger, close: async () => { await ledger.close(); await bus.close() } }
  }

  async function chartered (logger: Logger): Promise<{ bus: Bus, ledger: Ledger, genesis: ReplicaBlock, close: () => Promise<void> }> {
    const { bus, ledger, close } = await opened(logger)
    const genesis = await forge(await founder.sign(charter))
    await bus.publish(ROOM, { kind: 'block', block: genesis })
    expect(await ledger.get(genesis.id)).toBeDefined()
    return { bus, ledger, genesis, close }
  }

  /** A member's block that arrives before its parent, after the flood; then the parent. */
  async function lateParent (bus: Bus, ledger: Ledger, genesis: ReplicaBlock): Promise<string[]> {
    const parent = await forge(await honest.sign(vote(1)), [genesis.id])
    const child = await forge(await honest.sign(vote(2)), [parent.id])
    await bus.publish(ROOM, { kind: 'block', block: child })
    await bus.publish(ROOM, { kind: 'block', block: parent })
    expect(await ledger.get(child.id)).toBeDefined()
    return [parent.id, child.id]
  }

  it(`refuses ${FLOOD} orphans from a non-member without checking one signature, and keeps a member's block that came before its parent`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const jwt = await stranger.sign(vote(0))
      const blocks = await flood(async () => jwt)
      const before = signatures.checked
      for (const block of blocks) await bus.publish(ROOM, { kind: 'block', block })
      const kept = await lateParent(bus, ledger, genesis)
      expect(signatures.checked - before).toBe(2)
      expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, ...kept])
      expect(Object.fromEntries(logger.refused)).toEqual({ NotMemberError: FLOOD })
    } finally { await close() }
  })

  it(`holds at most ${MAX_ORPHANS_PER_SENDER} orphans of a member flooding ${FLOOD}, checking no more signatures, and loses no other member's block`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const blocks = await flood(async i => hostile.sign(vote(1000 + i)))
      const before = signatures.checked
      for (const block of blocks) await bus.publish(ROOM, { kind: 'block', block })
      const kept = await lateParent(bus, ledger, genesis)
      expect(signatures.checked - before).toBe(MAX_ORPHANS_PER_SENDER + 2)
      expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, ...kept])
      expect(Object.fromEntries(logger.refused)).toEqual({ OrphanLimitError: FLOOD - MAX_ORPHANS_PER_SENDER })
      expect(await ledger.verify()).toEqual({ ok: true, blocks: 3 })
    } finally { await close() }
  })

  // Found red-teaming: the share is counted by the record's signer, so a stranger re-wrapping
  // one of a member's records it saw go by filled that member's share with one signature.
  it(`holds one waiting block per record: a stranger re-wrapping a member's waiting record ${MAX_ORPHANS_PER_SENDER} times does not fill the member's share`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const parent = await forge(await honest.sign(vote(1)), [genesis.id])
      const early = await forge(await honest.sign(vote(2)), [parent.id])
      await bus.publish(ROOM, { kind: 'block', block: early })
      for (let i = 0; i < MAX_ORPHANS_PER_SENDER; i++) await bus.publish(ROOM, { kind: 'block', block: await forge(early.record, [randomBytes(32).toString('hex')]) })
      const later = await forge(await honest.sign(vote(3)), [early.id])
      await bus.publish(ROOM, { kind: 'block', block: later })
      await bus.publish(ROOM, { kind: 'block', block: parent })
      expect(await ledger.get(later.id)).toBeDefined()
      expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, parent.id, early.id, later.id])
      expect(Object.fromEntries(logger.refused)).toEqual({ DuplicateRecordError: MAX_ORPHANS_PER_SENDER })
    } finally { await close() }
  })

  // Found red-teaming: a stranger holding a member's signed records that are not on this
  // ledger (from another federation the member's key is in) filled the member's share.
  it(`refuses blocks carrying another federation's records before they wait: ${MAX_ORPHANS_PER_SENDER} of a member's records from elsewhere do not fill its share`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const elsewhere = async (n: number): Promise<string> => honest.sign({ ...vote(n), federation: 'another' })
      const checked = signatures.checked
      for (let i = 0; i < MAX_ORPHANS_PER_SENDER; i++) await bus.publish(ROOM, { kind: 'block', block: await forge(await elsewhere(i), [randomBytes(32).toString('hex')]) })
      expect(await lateParent(bus, ledger, genesis)).toHaveLength(2)
      expect(Object.fromEntries(logger.refused)).toEqual({ WrongFederationError: MAX_ORPHANS_PER_SENDER })
      expect(signatures.checked - checked).toBe(2)
      // Nor is one kept whose parents are held.
      await bus.publish(ROOM, { kind: 'block', block: await forge(await elsewhere(999), [genesis.id]) })
      expect((await all(ledger)).map(b => peekFederation(b.record))).toEqual(['test', 'test', 'test'])
    } finally { await close() }
  })

  // Found red-teaming: a member's records from an earlier run under this federation id and the
  // same key (signed before this charter, within their hour) filled the member's share, re-wrapped
  // in blocks dated now, or dated when they were signed, within the lag bound.
  it(`refuses blocks whose record is not signed at their time, or that are dated before the charter: ${MAX_ORPHANS_PER_SENDER} of a member's records from an earlier run do not fill its share`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const half = MAX_ORPHANS_PER_SENDER / 2
      const earlier = async (n: number, at: number): Promise<string> => honest.sign(vote(n), { now: at })
      const checked = signatures.checked
      // Signed 20 minutes before the charter, re-dated now.
      for (let i = 0; i < half; i++) await bus.publish(ROOM, { kind: 'block', block: await forge(await earlier(i, genesis.time - 1200), [randomBytes(32).toString('hex')]) })
      // Signed 2 minutes before the charter, dated as signed (within the lag bound of the charter).
      for (let i = half; i < 2 * half; i++) await bus.publish(ROOM, { kind: 'block', block: await forge(await earlier(i, genesis.time - 120), [randomBytes(32).toString('hex')], { time: genesis.time - 120 }) })
      expect(await lateParent(bus, ledger, genesis)).toHaveLength(2)
      expect(Object.fromEntries(logger.refused)).toEqual({ RecordTimeMismatchError: half, ImplausibleBlockTimeError: half })
      expect(signatures.checked - checked).toBe(2)
    } finally { await close() }
  })

  it(`lets a block whose record is signed far from its time wait only for its signer's next block: a member approving ${MAX_ORPHANS_PER_SENDER} re-dated records of another's does not fill the other's share`, async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const rewraps = await Promise.all(Array.from({ length: MAX_ORPHANS_PER_SENDER }, async (_, i) => forge(await honest.sign(vote(i), { now: genesis.time - 1200 }), [randomBytes(32).toString('hex')])))
      // The hostile member approves them two by two, then sends them.
      for (let i = 0; i < rewraps.length; i += 2) {
        await bus.publish(ROOM, { kind: 'block', block: await forge(await hostile.sign(vote(1000 + i)), [rewraps[i]?.id ?? '', rewraps[i + 1]?.id ?? '']) })
      }
      for (const block of rewraps) await bus.publish(ROOM, { kind: 'block', block })
      expect(await lateParent(bus, ledger, genesis)).toHaveLength(2)
      expect(Object.fromEntries(logger.refused)).toEqual({ RecordTimeMismatchError: MAX_ORPHANS_PER_SENDER })
    } finally { await close() }
  })

  it('still keeps a block whose record is signed far from its time once its parents are held: its record is the federation\'s to refuse', async () => {
    const logger = tally()
    const { bus, ledger, genesis, close } = await chartered(logger)
    try {
      const gap = await forge(await honest.sign(vote(1)), [genesis.id])
      const skewed = await forge(await hostile.sign(vote(2), { now: genesis.time - 100 }), [gap.id])
      const child = await forge(await honest.sign(vote(3)), [skewed.id])
      // It may not wait, alone or for another member's block; refused not for good, so when it comes again with its parents held it is kept.
      await bus.publish(ROOM, { kind: 'block', block: skewed })
      await bus.publish(ROOM, { kind: 'block', block: child })
      await bus.publish(ROOM, { kind: 'block', block: skewed })
      await bus.publish(ROOM, { kind: 'block', block: gap })
      await bus.publish(ROOM, { kind: 'block', block: skewed })
      expect(await ledger.get(child.id)).toBeDefined()
      expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, gap.id, skewed.id, child.id])
      expect(Object.fromEntries(logger.refused)).toEqual({ RecordTimeMismatchError: 2 })
    } finally { await close() }
  })

  it('opened for a federation, refuses another\'s records before the charter; opened for none, refuses those waiting once the charter names its own', async () => {
    const elsewhere = async (n: number): Promise<string> => honest.sign({ ...vote(n), federation: 'another' })
    const genesis = await forge(await founder.sign(charter))
    for (const federation of ['test', undefined]) {
      const logger = tally()
      const { bus, ledger, close } = await opened(logger, { members: [founder.did, honest.did, hostile.did], federation })
      try {
        const early = await forge(await honest.sign(vote(1)), [genesis.id])
        const foreign = await forge(await elsewhere(2), [genesis.id])
        await bus.publish(ROOM, { kind: 'block', block: foreign })
        await bus.publish(ROOM, { kind: 'block', block: early })
        await bus.publish(ROOM, { kind: 'block', block: genesis })
        expect(await ledger.get(early.id)).toBeDefined()
        expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, early.id])
        expect(Object.fromEntries(logger.refused)).toEqual({ WrongFederationError: 1 })
      } finally { await close() }
    }
  })

  it(`before the charter, refuses orphans from signers its run does not name (${FLOOD} from 40 throwaway keys) and keeps a member's early block`, async () => {
    const logger = tally()
    const { bus, ledger, close } = await opened(logger, { members: [founder.did, honest.did, hostile.did] })
    try {
      // A flood sent before the federation starts: 40 keys, a share each, enough to fill any cap on all senders.
      const keys = Array.from({ length: 40 }, () => createIdentity(randomSecretKey()))
      const perKey = Math.ceil(FLOOD / keys.length)
      for (const key of keys) {
        const jwt = await key.sign(vote(0))
        for (let i = 0; i < perKey; i++) await bus.publish(ROOM, { kind: 'block', block: await forge(jwt, [randomBytes(32).toString('hex')]) })
      }
      // Then a member's block overtakes the charter it descends from.
      const genesis = await forge(await founder.sign(charter))
      const early = await forge(await honest.sign(vote(1)), [genesis.id])
      await bus.publish(ROOM, { kind: 'block', block: early })
      await bus.publish(ROOM, { kind: 'block', block: genesis })
      expect(await ledger.get(early.id)).toBeDefined()
      expect((await all(ledger)).map(b => b.id)).toEqual([genesis.id, early.id])
      expect(Object.fromEntries(logger.refused)).toEqual({ NotMemberError: perKey * keys.length })
    } finally { await close() }
  })
})
