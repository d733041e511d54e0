import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConclaveError } from '../../src/core/errors.ts'
import type { Logger } from '../../src/core/logger.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { BlockIndex, blockLine, hashId } from '../../src/ledger/dag.ts'
import type { Block } from '../../src/ledger/index.ts'
import { openReplica } from '../../src/ledger/replica.ts'
import { openTangle } from '../../src/ledger/tangle.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import { BusMessage, type Bus, type BusHandler, type ReplicaBlock } from '../../src/transport/index.ts'
import { all, charterOf, copyDirMadeAt, forge, vote } from './helpers.ts'

/**
 * Property-based tests of what a ledger takes from outside: blocks from the bus (a replica),
 * its own file (the tangle), records to append, and bus messages. Whatever arrives, only
 * ConclaveErrors come out, no block that fails verification is kept, and no honest member's
 * block is lost. Fixed seeds: a failure reproduces.
 */

const ROOM = 'fed-fuzz'
const T = 1_800_000_000
const founder = createIdentity(randomSecretKey())
const member = createIdentity(randomSecretKey())
const hostile = createIdentity(randomSecretKey())
const stranger = createIdentity(randomSecretKey())
const charter = charterOf([founder.did, member.did, hostile.did])
const tempDir = async (): Promise<string> => mkdtemp(join(tmpdir(), 'conclave-fuzz-'))

const mined = async (record: string, parents: string[], time: number): Promise<ReplicaBlock> => forge(record, parents, { time })

/** Keeps what a replica logs: refusals by error name, and ingestion that failed outright (a bug). */
function watching (): Logger & { failed: string[], refused: string[] } {
  const failed: string[] = []
  const refused: string[] = []
  return {
    failed,
    refused,
    info () {},
    warn (message, fields) {
      if (message === 'replica refused a block') refused.push((fields as { error: string }).error)
      else failed.push(`${message}: ${JSON.stringify(fields)}`)
    }
  }
}

/** A bus that hands the replica anything at all, unchecked: a replica trusts no transport. */
function rawBus (): Bus & { deliver: (block: unknown) => void } {
  const handlers = new Set<BusHandler>()
  return {
    deliver: (block) => { for (const h of handlers) void h({ kind: 'block', block } as BusMessage) },
    publish: async () => {},
    subscribe: async (_room, handler) => { handlers.add(handler); return { unsubscribe: () => { handlers.delete(handler) } } },
    close: async () => { handlers.clear() }
  }
}

/** The honest history, made once: the founder's charter, then members' votes 5 s apart, each on the one or two blocks before it. */
const honest: Promise<ReplicaBlock[]> = (async () => {
  const blocks = [await mined(await founder.sign(charter, { now: T }), [], T)]
  for (let n = 1; n <= 8; n++) {
    const time = T + 5 * n
    const parents = blocks.slice(-2).map(b => b.id)
    blocks.push(await mined(await (n % 2 === 0 ? founder : member).sign(vote(n), { now: time }), parents, time))
  }
  return blocks
})()
/** Records a hostile member and a stranger may anchor as they like. */
const hostileRecords = Promise.all([1, 2, 3].map(async n => hostile.sign(vote(100 + n), { now: T + 10 })))
const strangerRecord = stranger.sign(vote(200), { now: T + 10 })

/** One honest block with one field damaged, not re-mined: its id no longer fits its content. */
function damaged (block: ReplicaBlock, field: number, n: number): unknown {
  const flip = (s: string, at: number): string => {
    const i = at % s.length
    const c = s[i] === 'a' ? 'b' : 'a'
    return s.slice(0, i) + c + s.slice(i + 1)
  }
  switch (field % 7) {
    case 0: return { ...block, id: flip(block.id, n) }
    case 1: return { ...block, parents: [n.toString(16).padStart(64, '0')] }
    case 2: return { ...block, parents: [...block.parents, block.parents[0] ?? block.id] }
    case 3: return { ...block, record: flip(block.record, n) }
    case 4: return { ...block, time: block.time + 1 + (n % 100_000) }
    case 5: return { ...block, pow: block.pow + 1 + (n % 7) }
    default: return { ...block, extra: n }
  }
}

/** What the adversary sends: honest blocks damaged, junk, a stranger's and a hostile member's blocks, replays. */
const Adversarial = fc.oneof(
  fc.record({ kind: fc.constant('damaged' as const), index: fc.nat(8), field: fc.nat(), n: fc.nat() }),
  fc.record({ kind: fc.constant('junk' as const), value: fc.anything() }),
  fc.record({ kind: fc.constant('stranger' as const), parent: fc.nat(8), ahead: fc.integer({ min: -30, max: 30 }) }),
  fc.record({ kind: fc.constant('hostile' as const), record: fc.nat(2), parent: fc.nat(8), time: fc.integer({ min: -400, max: 200 }) }),
  fc.record({ kind: fc.constant('again' as const), index: fc.nat(8) })
)

describe('fuzzed replica ingestion', () => {
  it('keeps every honest block in any order, whatever else arrives, and nothing that fails verification', async () => {
    const history = await honest
    const honestIds = new Set(history.map(b => b.id))
    const records = await hostileRecords
    const strangers = await strangerRecord
    await fc.assert(fc.asyncProperty(
      fc.array(fc.nat(1000), { minLength: history.length, maxLength: history.length }),
      fc.array(fc.tuple(fc.nat(1000), Adversarial), { maxLength: 24 }),
      async (honestAt, adversarial) => {
        const bus = rawBus()
        const logger = watching()
        // The clock stands a minute after the last honest block.
        const ledger = await openReplica({ dir: await copyDirMadeAt(T), bus, room: ROOM, difficulty: 4, founder: founder.did, logger, clock: () => T + 100 })
        try {
          const hostileValid = new Set<string>()
          const sent: Array<[number, unknown]> = history.map((b, i) => [honestAt[i] as number, b])
          for (const [at, item] of adversarial) {
            const parent = (i: number): string => (history[i] as ReplicaBlock).id
            switch (item.kind) {
              case 'damaged': sent.push([at, damaged(history[item.index] as ReplicaBlock, item.field, item.n)]); break
              case 'junk': sent.push([at, item.value]); break
              case 'stranger': sent.push([at, await mined(strangers, [parent(item.parent)], T + 10 + item.ahead)]); break
              case 'hostile': {
                const block = await mined(records[item.record] as string, [parent(item.parent)], T + 10 + item.time)
                hostileValid.add(block.id)
                sent.push([at, block])
                break
              }
              case 'again': sent.push([at, history[item.index]])
            }
          }
          for (const [, item] of sent.sort((a, b) => a[0] - b[0])) bus.deliver(item)
          const held = await all(ledger)
          expect(logger.failed).toEqual([])
          for (const id of honestIds) expect(held.map(b => b.id)).toContain(id)
          for (const b of held) expect(honestIds.has(b.id) || hostileValid.has(b.id)).toBe(true)
          expect(await ledger.verify()).toEqual({ ok: true, blocks: held.length })
        } finally {
          await ledger.close()
        }
      }
    ), { seed: 14, numRuns: 40 })
  })

  it('refuses thousands of junk and damaged blocks, keeping nothing and throwing nothing', async () => {
    const history = await honest
    const bus = rawBus()
    const logger = watching()
    const ledger = await openReplica({ dir: await copyDirMadeAt(T), bus, room: ROOM, difficulty: 4, founder: founder.did, logger, clock: () => T + 100 })
    try {
      bus.deliver(history[0])
      const block = fc.oneof(
        fc.anything(),
        fc.record({ id: fc.stringMatching(/^[0-9a-f]{64}$/), parents: fc.array(fc.stringMatching(/^[0-9a-f]{64}$/), { maxLength: 3 }), record: fc.string({ minLength: 1 }), time: fc.integer(), pow: fc.integer() }),
        fc.tuple(fc.nat(8), fc.nat(), fc.nat()).map(([i, field, n]) => damaged(history[i] as ReplicaBlock, field, n))
      )
      await fc.assert(fc.asyncProperty(block, async (raw) => {
        bus.deliver(raw)
        expect((await all(ledger)).map(b => b.id)).toEqual([history[0]?.id])
      }), { seed: 1414, numRuns: 2000 })
      expect(logger.failed).toEqual([])
      expect(await ledger.verify()).toEqual({ ok: true, blocks: 1 })
    } finally {
      await ledger.close()
    }
  })
})

describe('fuzzed tangle', () => {
  /** A tangle file of six blocks, its bytes and its blocks. */
  const made = (async () => {
    const dir = await tempDir()
    const ledger = await openTangle({ dir, difficulty: 2 })
    for (let n = 0; n < 6; n++) await ledger.append(await member.sign(vote(n)))
    const blocks = await all(ledger)
    await ledger.close()
    const bytes = Buffer.from('{"tangle":1,"difficulty":2}\n' + blocks.map(blockLine).join(''))
    return { blocks, bytes }
  })()

  /** Damage as files meet it: flipped bytes, a truncation, a deleted, repeated, swapped or foreign line. */
  const Damage = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('delete' as const), line: fc.nat(6) }),
    fc.record({ kind: fc.constant('repeat' as const), line: fc.nat(6) }),
    fc.record({ kind: fc.constant('swap' as const), line: fc.nat(5) }),
    fc.record({ kind: fc.constant('insert' as const), line: fc.nat(6), text: fc.string() })
  )

  function apply (bytes: Buffer, damage: typeof Damage extends fc.Arbitrary<infer D> ? D : never): Buffer {
    if (damage.kind === 'flip') {
      const out = Buffer.from(bytes)
      const at = damage.at % out.length
      out[at] = (out[at] as number) ^ (1 << damage.bit)
      return out
    }
    if (damage.kind === 'truncate') return bytes.subarray(0, damage.at % bytes.length)
    // Lines as split on newlines; the last, after the final newline, is kept as it is.
    const lines = bytes.toString('latin1').split('\n')
    const line = damage.line % Math.max(1, lines.length - 1)
    if (damage.kind === 'delete') lines.splice(line, 1)
    if (damage.kind === 'repeat') lines.splice(line, 0, lines[line] as string)
    if (damage.kind === 'swap') lines.splice(line, 2, lines[line + 1] ?? '', lines[line] as string)
    if (damage.kind === 'insert') lines.splice(line, 0, damage.text)
    return Buffer.from(lines.join('\n'), 'latin1')
  }

  it('opens any damaged file, yields only a prefix of the blocks it was made with, and verifies only a whole prefix of the file', async () => {
    const { blocks, bytes } = await made
    const header = '{"tangle":1,"difficulty":2}\n'
    await fc.assert(fc.asyncProperty(fc.array(Damage, { minLength: 1, maxLength: 3 }), async (damages) => {
      const damagedBytes = damages.reduce(apply, bytes)
      const dir = await tempDir()
      const file = join(dir, 'tangle.jsonl')
      await writeFile(file, damagedBytes)
      // Read-only (an audit), then to be written (a resume), which may take a half-written last line off, or give a file
      // with no more than part of a header (or nothing) a header of its own, at the default difficulty.
      const headerCut = !damagedBytes.includes(0x0a) && header.startsWith(damagedBytes.toString('latin1'))
      for (const readOnly of [true, false]) {
        const ledger = await openTangle({ dir, readOnly })
        try {
          const onDisk = await readFile(file)
          const cut = damagedBytes.subarray(0, damagedBytes.lastIndexOf(0x0a) + 1)
          const fresh = !readOnly && headerCut
          expect(onDisk.equals(damagedBytes) || (!readOnly && (headerCut ? onDisk.toString() === '{"tangle":1,"difficulty":8}\n' : onDisk.equals(cut)))).toBe(true)
          const held = await all(ledger)
          expect(held).toEqual(blocks.slice(0, held.length))
          const verified = await ledger.verify()
          // A file cut after a whole line is a shorter ledger: the audit's head, not the file, tells.
          expect(verified.ok).toBe(fresh || onDisk.equals(Buffer.from(header + held.map(blockLine).join(''))))
          if (!verified.ok) expect(verified.failure.error).toBeInstanceOf(ConclaveError)
        } finally {
          await ledger.close()
        }
      }
    }), { seed: 1400, numRuns: 60 })
  })

  it('appends nothing but validly signed records, refusing the rest with a ConclaveError', async () => {
    const { blocks } = await made
    const jwt = blocks[0]?.record as string
    const ledger = await openTangle({ dir: await tempDir(), difficulty: 0 })
    try {
      const record = fc.oneof(
        fc.string({ minLength: 1 }),
        fc.tuple(fc.nat(), fc.constantFrom('A', 'b', '.', '-', '_', '')).map(([at, c]) => jwt.slice(0, at % jwt.length) + c + jwt.slice(at % jwt.length + 1))
      ).filter(r => r !== jwt && r.length > 0)
      await fc.assert(fc.asyncProperty(record, async (r) => {
        const outcome = await ledger.append(r).then(() => undefined, (err: unknown) => err)
        expect(outcome).toBeInstanceOf(ConclaveError)
      }), { seed: 1401, numRuns: 300 })
      expect(await all(ledger)).toEqual([])
    } finally {
      await ledger.close()
    }
  })
})

describe('fuzzed block order', () => {
  /** A random DAG: each block approves up to two distinct earlier ones. */
  const Dag = fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(2)), { minLength: 1, maxLength: 40 }).map(spec => {
    const blocks: Block[] = []
    for (const [i, [a, b, count]] of spec.entries()) {
      const parents = i === 0 ? [] : [...new Set([a % i, b % i].slice(0, count))].map(p => (blocks[p] as Block).id)
      blocks.push({ id: hashId([i, parents], 0, 0), seq: i, parents, record: `r${i}`, time: 1 + i, pow: 0 })
    }
    return blocks
  })

  it('descends agrees with reachability, and the next block always descends from the block it must follow', () => {
    fc.assert(fc.property(Dag, fc.nat(), fc.nat(), (blocks, x, y) => {
      const index = new BlockIndex(blocks)
      const reach = (from: Block, to: string): boolean => {
        const seen = new Set<string>()
        const walk = (b: Block): boolean => b.parents.some(p => {
          if (p === to) return true
          if (seen.has(p)) return false
          seen.add(p)
          return walk(blocks.find(x => x.id === p) as Block)
        })
        return walk(from)
      }
      const [a, b] = [blocks[x % blocks.length] as Block, blocks[y % blocks.length] as Block]
      expect(index.descends(a.id, b.id)).toBe(reach(a, b.id))
      const next = index.next(0, b.id)
      expect(next.parents.some(p => p === b.id || index.descends(p, b.id))).toBe(true)
      expect(new Set(next.parents).size).toBe(next.parents.length)
      expect(next.time).toBe(Math.max(...next.parents.map(p => (index.get(p) as Block).time)))
    }), { seed: 1402, numRuns: 1000 })
  })
})

describe('fuzzed bus messages', () => {
  it('delivers only messages that pass the schema, and refuses the rest with InvalidRecordError', async () => {
    const bus = createLocalBus()
    const delivered: unknown[] = []
    await bus.subscribe(ROOM, m => { delivered.push(m) })
    const history = await honest
    const message = fc.oneof(
      fc.anything(),
      fc.record({ kind: fc.constantFrom('block', 'record', 'chat', 'hello', 'other'), block: fc.anything() }),
      fc.tuple(fc.nat(8), fc.nat(), fc.nat()).map(([i, field, n]) => ({ kind: 'block', block: damaged(history[i] as ReplicaBlock, field, n) }))
    )
    try {
      await fc.assert(fc.asyncProperty(message, async (m) => {
        const outcome = await bus.publish(ROOM, m as BusMessage).then(() => 'sent', (err: unknown) => err)
        if (outcome !== 'sent') expect(outcome).toMatchObject({ name: 'InvalidRecordError', code: 'ERR_INVALID_RECORD' })
      }), { seed: 1403, numRuns: 2000 })
    } finally {
      await bus.close()
    }
    for (const m of delivered) expect(BusMessage.safeParse(m).success).toBe(true)
  })
})
