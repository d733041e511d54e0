import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { ConfigError, type ConclaveError } from '../core/errors.ts'
import type { Identity } from '../identity/index.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { BlockId } from '../core/records.ts'
import { ServiceUrl } from '../core/secret.ts'
import type { Bus } from '../transport/index.ts'

/**
 * One anchored record. `id` is the hash of everything else, so a flipped byte anywhere
 * in a block changes its id and breaks its children's references.
 */
export const Block = z.object({
  id: BlockId,
  /** Position in this ledger's append order (0 = genesis). */
  seq: z.number().int().nonnegative(),
  /** Earlier blocks this one approves, picked by tip selection (fewer than 2 only near genesis). */
  parents: z.array(BlockId).max(2),
  /** The signed record, a JWT. */
  record: z.string().min(1),
  /** Unix seconds at which the ledger accepted the block; never earlier than any of its parents'. */
  time: z.number().int().positive(),
  /** Proof-of-work nonce (0 when the difficulty is 0). */
  pow: z.number().int().nonnegative()
}).strict()
export type Block = z.infer<typeof Block>

export type LedgerVerification =
  | { ok: true, blocks: number }
  | { ok: false, blocks: number, failure: { seq: number, id?: string, error: ConclaveError } }

export interface AppendOptions extends AbortOptions {
  /**
   * A block the new one must descend from (a vote, its proposal's block): the ledger's order
   * is what times a vote. Ledgers where every block descends from all earlier ones (the
   * embedded tangle, IOTA) have nothing more to do.
   */
  after?: string
}

export interface BlocksOptions extends AbortOptions {
  /** The first position (`seq`) wanted: earlier blocks are skipped. @default 0 */
  from?: number
}

export interface GetOptions extends AbortOptions {
  /** Wait for a block that has not arrived yet (only a replica ever waits). @default true */
  wait?: boolean
  /**
   * On whose behalf the block is waited for: who announced its record (the account the room
   * names), or who signed it (verified) where the room names nobody. A replica asks the room
   * for the block on that share, so one's announcements of made-up blocks cannot crowd out another's.
   */
  signer?: string
  /**
   * The record the caller expects the block to anchor (its announcement's): a replica that
   * keeps that record under another block does not wait for this one, so whoever re-announces
   * a member's record under made-up ids takes none of its asks.
   */
  record?: string
}

/**
 * An append-only DAG of signed records. `append` accepts only a validly signed record
 * (protocol rules are the federation's business, not the ledger's; a replica, which takes
 * blocks from others, also keeps only members' blocks).
 */
export interface Ledger {
  append(jwt: string, options?: AppendOptions): Promise<Block>
  get(id: string, options?: GetOptions): Promise<Block | undefined>
  /** Whether block `ancestor` is reachable from block `id` through parents: the ledger's order. False when either is not held. */
  descends(id: string, ancestor: string, options?: AbortOptions): Promise<boolean>
  /** Blocks in append order from `from` on; a block's parents always come before it. */
  blocks(options?: BlocksOptions): AsyncIterable<Block>
  /** Re-checks every block: hash, parents, proof of work, signature. Names the first failure. */
  verify(options?: AbortOptions): Promise<LedgerVerification>
  close(): Promise<void>
}

export const LedgerConfig = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('tangle'),
    /** Leading zero bits required of a block hash; 0 disables proof of work. @default 8 */
    difficulty: z.number().int().min(0).max(24).default(8)
  }).strict(),
  z.object({
    /**
     * The replicated tangle: each process keeps its own copy and blocks travel on the
     * federation's bus room, so processes on different machines share one ledger.
     */
    kind: z.literal('replica'),
    /** Leading zero bits required of a block hash; the same for every copy. @default 8 */
    difficulty: z.number().int().min(0).max(24).default(8)
  }).strict(),
  z.object({
    kind: z.literal('iota'),
    /** IOTA Rebased JSON-RPC endpoint (devnet, testnet or a local node). */
    url: ServiceUrl,
    /** Package that exposes the Conclave anchor Move module. */
    packageId: z.string().regex(/^0x[0-9a-f]{1,64}$/),
    /** Gas budget per transaction, in nanos. @default 10_000_000 */
    gasBudget: z.number().int().positive().default(10_000_000)
  }).strict()
])
export type LedgerConfig = z.infer<typeof LedgerConfig>

export interface CreateLedgerOptions {
  /** Where an embedded ledger keeps its file (the run's `ledger/`). */
  dir: string
  /** Signs transactions (IOTA); the tangle needs none. */
  identity?: Identity
  /** The bus and room a replica's copies share (kind `replica` needs both). */
  bus?: Bus
  room?: string
  /** The DID that anchors the charter: a replica keeps only its blocks until it holds the charter. */
  founder?: string
  /** The members the run names: a replica holds only their blocks while it waits for the charter. */
  members?: readonly string[]
  /** The federation's id: a replica refuses blocks whose records name another. */
  federation?: string
  /** The federation's accounts on the bus: a replica answers each one's wants beside everyone else's share. */
  accounts?: readonly string[]
  logger?: Logger
  /** Unix seconds, what an embedded ledger dates new blocks by. @default the system clock */
  clock?: () => number
}

/** The only place a ledger backend is constructed; call sites pick one by config. */
export async function createLedger (config: LedgerConfig, options: CreateLedgerOptions): Promise<Ledger> {
  switch (config.kind) {
    case 'tangle': return (await import('./tangle.ts')).openTangle({ dir: options.dir, difficulty: config.difficulty, logger: options.logger, clock: options.clock })
    case 'replica': {
      // A copy without a bus would fail only at its first append; a read-only copy is openReplica's (audit-dir.ts).
      if (options.bus === undefined || options.room === undefined) throw new ConfigError('ledger.kind replica needs the federation\'s bus and room')
      return (await import('./replica.ts')).openReplica({ dir: options.dir, bus: options.bus, room: options.room, founder: options.founder, members: options.members, federation: options.federation, accounts: options.accounts, difficulty: config.difficulty, logger: options.logger, clock: options.clock })
    }
    case 'iota': return (await import('./iota.ts')).createIotaLedger({ ...config, identity: options.identity, logger: options.logger })
  }
}

/**
 * The embedded ledger a run's `ledger/` folder holds, opened read-only (an audit): a member's
 * copy of the replicated tangle when there is one, else the tangle. Creates and writes
 * nothing; EmptyLedgerError when the folder holds neither file.
 */
export async function openLedgerDir (dir: string, options: { logger?: Logger } = {}): Promise<Ledger> {
  const { openReplica, REPLICA_FILE } = await import('./replica.ts')
  const replica = await access(join(dir, REPLICA_FILE)).then(() => true, () => false)
  if (replica) return openReplica({ dir, logger: options.logger })
  return (await import('./tangle.ts')).openTangle({ dir, readOnly: true, logger: options.logger })
}
