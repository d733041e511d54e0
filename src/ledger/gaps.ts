import type { Logger } from '../core/logger.ts'
import type { BusMessage } from '../transport/index.ts'
import type { Block } from './index.ts'

/** How many times a copy asks for one missing parent, the waits doubling, before it gives up. */
export const MAX_ASKS = 6
/**
 * Asks per interval at most, in all and on behalf of one signer: a member whose blocks name
 * parents nobody holds gets only its share of the asks, and other members' gaps are asked for
 * meanwhile. A gap is asked for on behalf of any signer whose block waits for it, so a member
 * that makes one of its blocks wait on an honest gap cannot spend that gap's asks.
 */
const MAX_ASKS_PER_TICK = 16
const MAX_ASKS_PER_SIGNER = 2
/**
 * Blocks a copy publishes again per interval for askers other than the federation's own
 * accounts, all together: any number of accounts flooding wants costs it a bounded number of
 * messages, and takes nothing from the members'.
 */
const MAX_ANSWERS_PER_TICK = 64
/**
 * For one asker the bus names (a Matrix account): as many as a copy asks for in an interval
 * (MAX_ASKS_PER_TICK). A member account has that many of its own, beside the others' 64, so no
 * flood, a hostile member's included, leaves a member's copy without the parents it asks for.
 */
const MAX_ANSWERS_PER_ASKER = MAX_ASKS_PER_TICK

/** A parent a copy lacks, and who signed the blocks that wait for it. */
export interface Gap { id: string, signers: ReadonlySet<string> }

export interface GapOptions {
  /** How often the copy looks for parents it lacks, and the first wait before it asks for one. */
  askMs: number
  publish: (message: BusMessage) => Promise<void>
  logger: Logger
  /** The federation's own accounts, as the bus names askers: each is answered beside the others' share. */
  members?: readonly string[]
}

/**
 * How a copy of the replicated tangle fills its gaps. A block whose parent the copy lacks
 * (never delivered to it, or refused as dated ahead of its clock when others kept it) waits;
 * the copy then asks the room for that parent (`{ kind: 'want', block }`), and each copy
 * that holds it publishes it again, which every receiver checks as any block. Without this,
 * copies whose clocks differ by a second split for good over a block dated at their bound:
 * the honest blocks that approve it never reach the copies that refused it.
 *
 * Asks wait one interval (a parent delivered out of order comes by itself), then double, and
 * stop after MAX_ASKS, about 2 minutes at the default interval. Each copy answers a block at
 * most once per interval, at most MAX_ANSWERS_PER_ASKER blocks to one account, and at most
 * MAX_ANSWERS_PER_TICK to all but the federation's own accounts together. Another copy's ask
 * never postpones this copy's own: anyone in the room may ask.
 */
export class Gaps {
  readonly #options: GapOptions
  /** Per parent this copy lacks: how often it asked, and how many intervals until it asks next. */
  readonly #asks = new Map<string, { tries: number, wait: number }>()
  readonly #members: ReadonlySet<string>
  /** Blocks answered this interval. */
  readonly #answered = new Set<string>()
  /** How many of them askers other than the members had, all together. */
  #answeredOthers = 0
  /** How many of them each asker had. */
  readonly #answeredFor = new Map<string, number>()
  readonly #timer: NodeJS.Timeout

  /** `lacking` yields the parents this copy's waiting blocks lack, each once. */
  constructor (options: GapOptions, lacking: () => Iterable<Gap>) {
    this.#options = options
    this.#members = new Set(options.members)
    this.#timer = setInterval(() => { this.#tick(lacking()) }, options.askMs)
    this.#timer.unref()
  }

  /**
   * Publishes `block` for a copy that asked for it (`asker`, where the bus names it), unless
   * answered already this interval, or the asker's answers this interval are used up: its own
   * for a member account, else its own and the others' share.
   */
  answer (block: Block | undefined, asker?: string): void {
    if (block === undefined || this.#answered.has(block.id)) return
    const member = asker !== undefined && this.#members.has(asker)
    if (!member && this.#answeredOthers >= MAX_ANSWERS_PER_TICK) return
    const before = asker === undefined ? 0 : this.#answeredFor.get(asker) ?? 0
    if (before >= MAX_ANSWERS_PER_ASKER) return
    if (asker !== undefined) this.#answeredFor.set(asker, before + 1)
    if (!member) this.#answeredOthers++
    this.#answered.add(block.id)
    const { id, parents, record, time, pow } = block
    this.#send({ kind: 'block', block: { id, parents, record, time, pow } })
  }

  close (): void {
    clearInterval(this.#timer)
  }

  #tick (lacking: Iterable<Gap>): void {
    this.#answered.clear()
    this.#answeredOthers = 0
    this.#answeredFor.clear()
    const still = new Map([...lacking].map(gap => [gap.id, gap.signers]))
    for (const id of this.#asks.keys()) if (!still.has(id)) this.#asks.delete(id)
    let asked = 0
    const bySigner = new Map<string, number>()
    for (const [id, signers] of still) {
      const ask = this.#asks.get(id)
      if (ask === undefined) { this.#asks.set(id, { tries: 0, wait: 1 }); continue }
      if (ask.tries >= MAX_ASKS || --ask.wait > 0) continue
      const signer = [...signers].find(s => (bySigner.get(s) ?? 0) < MAX_ASKS_PER_SIGNER)
      if (asked >= MAX_ASKS_PER_TICK || signer === undefined) { ask.wait = 1; continue }
      bySigner.set(signer, (bySigner.get(signer) ?? 0) + 1)
      ask.tries++
      ask.wait = 2 ** ask.tries
      asked++
      this.#send({ kind: 'want', block: id })
    }
  }

  #send (message: BusMessage): void {
    this.#options.publish(message).catch((err: unknown) => {
      this.#options.logger.warn('replica could not publish', { kind: message.kind, error: (err as Error).message })
    })
  }
}
