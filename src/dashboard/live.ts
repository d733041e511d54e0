import { EventEmitter } from 'node:events'
import { unwatchFile, watchFile, type Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { silentLogger, type Logger } from '../core/logger.ts'
import { REPLICA_FILE } from '../ledger/replica.ts'
import { readPlainFile } from '../core/files.ts'
import { MAX_REPORT_BYTES, RunReport } from '../federation/report.ts'
import { createHeliaStore } from '../storage/helia.ts'
import type { ContentStore } from '../storage/index.ts'
import { readLedgerDir, RunViewBuilder, type Applied, type RunView } from '../federation/run-view.ts'

export interface LiveRunEvents {
  /** A block new on the ledger: a record the view now shows, or one the protocol refused. */
  record: [Applied]
  /** report.json appeared or changed (the run finished, or was audited). */
  report: []
  /** The ledger no longer extends what was shown (a run started over with --force): the view starts again. */
  reset: []
}

export interface LiveRunOptions {
  /**
   * How often the ledger and report files are looked at, in ms. Each change re-reads and
   * re-verifies the whole ledger file (the ledger's own read-only opener), so this bounds
   * what following a run costs. @default 1000
   */
  intervalMs?: number
  logger?: Logger
}

/**
 * A run directory as it grows: watches its ledger file and report.json, and applies each
 * new block to a RunView as it lands. Reads only: the ledger is opened read-only each time
 * it changes, and nothing is ever written into the directory.
 */
export class LiveRun extends EventEmitter<LiveRunEvents> {
  readonly dir: string
  readonly #logger: Logger
  readonly #intervalMs: number
  readonly #watched: string[]
  /** The run's own store, read-only, to derive each checkpoint's model again; none where its content is elsewhere (kubo). */
  readonly #store?: ContentStore
  #builder: RunViewBuilder
  /** What each block read so far became, in ledger order. */
  #seen: Applied[] = []
  #report?: RunReport
  #refresh: Promise<void> = Promise.resolve()
  #pending = false

  private constructor (dir: string, options: LiveRunOptions, store: ContentStore | undefined) {
    super()
    this.dir = dir
    this.#store = store
    this.#builder = new RunViewBuilder({ store })
    this.#logger = options.logger ?? silentLogger
    this.#intervalMs = options.intervalMs ?? 1000
    this.#watched = [join(dir, 'ledger', 'tangle.jsonl'), join(dir, 'ledger', REPLICA_FILE), join(dir, 'report.json')]
  }

  /** Reads what the directory holds now, then follows it until `close`. */
  static async open (dir: string, options: LiveRunOptions = {}): Promise<LiveRun> {
    const storeDir = join(dir, 'store')
    const store = await stat(storeDir).then(s => s.isDirectory(), () => false) ? await createHeliaStore({ dir: storeDir, readOnly: true }) : undefined
    const live = new LiveRun(dir, options, store)
    // Watch first: a block that lands while the first read runs is then a change, not missed.
    for (const file of live.#watched) watchFile(file, { interval: live.#intervalMs, persistent: false }, live.#changed)
    await live.refresh()
    return live
  }

  get view (): RunView { return this.#builder.view() }
  get report (): RunReport | undefined { return this.#report }
  /** Blocks read so far (shown or refused): the next record event's seq. */
  get seq (): number { return this.#seen.length }
  /** What the blocks from `seq` on became: the events a client that has seen the blocks before `seq` missed. */
  since (seq: number): Applied[] { return this.#seen.slice(seq) }

  /** Reads the ledger and report again; calls made while one runs are folded into the next. */
  async refresh (): Promise<void> {
    if (this.#pending) return this.#refresh
    this.#pending = true
    this.#refresh = this.#refresh.then(async () => {
      this.#pending = false
      await this.#readLedger()
      await this.#readReport()
    }).catch((err: unknown) => { this.#logger.warn('dashboard: reading the run failed', { error: (err as Error).message }) })
    return this.#refresh
  }

  async close (): Promise<void> {
    for (const file of this.#watched) unwatchFile(file, this.#changed)
    await this.#refresh
    await this.#store?.close()
  }

  readonly #changed = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs !== previous.mtimeMs || current.size !== previous.size) void this.refresh()
  }

  async #readLedger (): Promise<void> {
    const { blocks, ledger } = await readLedgerDir(join(this.dir, 'ledger'))
    if (blocks.length < this.#seen.length || this.#seen.some((applied, seq) => blocks[seq]?.id !== applied.block)) {
      this.#builder = new RunViewBuilder({ store: this.#store })
      this.#seen = []
      this.emit('reset')
    }
    for (const block of blocks.slice(this.#seen.length)) {
      const applied = await this.#builder.apply(block, ledger)
      this.#seen.push(applied)
      this.emit('record', applied)
    }
  }

  async #readReport (): Promise<void> {
    const text = (await readPlainFile(join(this.dir, 'report.json'), MAX_REPORT_BYTES).catch(() => undefined))?.toString('utf8')
    let parsed: RunReport | undefined
    try {
      parsed = text === undefined ? undefined : RunReport.parse(JSON.parse(text))
    } catch {
      // Half-written or not a Conclave report: keep the last good one.
      return
    }
    if (JSON.stringify(parsed) === JSON.stringify(this.#report)) return
    this.#report = parsed
    this.emit('report')
  }
}
