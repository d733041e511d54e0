import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, EmptyLedgerError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { Did } from '../core/records.ts'
import { peekRecord, watchOnlyIdentity } from '../identity/index.ts'
import { openLedgerDir, type Ledger } from '../ledger/index.ts'
import { loadTask, type Shard, type Task } from '../ml/task.ts'
import { createContentStore, type ContentStore } from '../storage/index.ts'
import { createHeliaStore } from '../storage/helia.ts'
import { createLocalBus } from '../transport/local.ts'
import { memberName, type RunConfig } from './config.ts'
import { runConfigIn } from './run-dir.ts'
import { enrol } from './enrol.ts'
import type { Participant } from './participant.ts'
import { readRunReport, type RunReport } from './report.ts'

/**
 * A run's members loaded read-only from its directory, to be asked about the record
 * (`conclave chat DIR`). The ledger and store are opened read-only and the members have no
 * keys (watch-only identities): nothing is ever written into the directory. Each member is
 * loaded when first asked for and replays the ledger into its own state; `refresh` follows a
 * run that is still going, whose ledger grows under us.
 */
export class ObservedRun {
  readonly dir: string
  readonly config: RunConfig
  /** Member names in the charter's order. */
  readonly names: readonly string[]
  /** The run's report.json, when the run has finished and written one. */
  readonly report?: RunReport
  readonly #dids: readonly Did[]
  readonly #store: ContentStore
  readonly #logger: Logger
  readonly #members = new Map<string, Participant>()
  #ledger: Ledger
  #stamp: string
  #task?: { task: Task, shards: Shard[] }

  private constructor (init: { dir: string, config: RunConfig, dids: Did[], ledger: Ledger, store: ContentStore, stamp: string, report?: RunReport, logger: Logger }) {
    this.dir = init.dir
    this.config = init.config
    this.#dids = init.dids
    this.names = init.dids.map((_, i) => memberName(i))
    this.#ledger = init.ledger
    this.#store = init.store
    this.#stamp = init.stamp
    this.report = init.report
    this.#logger = init.logger
  }

  static async open (dir: string, options: { logger?: Logger } = {}): Promise<ObservedRun> {
    const logger = options.logger ?? silentLogger
    const folder = join(dir, 'ledger')
    if (!await stat(join(dir, 'config.json')).then(s => s.isFile(), () => false) || !await stat(folder).then(s => s.isDirectory(), () => false)) {
      throw new ConfigError(`${dir} is not a Conclave run directory: it needs config.json and ledger/ (made by conclave run)`)
    }
    const config = await runConfigIn(dir)
    const stamp = await stampOf(folder)
    const ledger = await openLedger(folder, logger)
    const dids = await charterMembers(ledger).catch(async (err: unknown) => { await ledger.close(); throw err })
    const store = config.store.kind === 'helia'
      ? await createHeliaStore({ dir: join(dir, 'store'), readOnly: true, logger })
      : await createContentStore(config.store, { dir: join(dir, 'store'), logger })
    const report = await readRunReport(dir)
    return new ObservedRun({ dir, config, dids, ledger, store, stamp, report, logger })
  }

  /** The ledger as last opened (refresh reopens it). */
  get ledger (): Ledger { return this.#ledger }

  nameOf (did: Did): string {
    const i = this.#dids.indexOf(did)
    return i < 0 ? did : memberName(i)
  }

  /** Member `name`, loaded and caught up with the ledger as it stands. */
  async member (name: string): Promise<Participant> {
    const index = this.names.indexOf(name)
    if (index < 0) throw new ConfigError(`there is no ${name} in this run; its members are ${this.names.join(', ')}`)
    await this.refresh()
    let member = this.#members.get(name)
    if (member === undefined) {
      const { task, shards } = await this.#loadTask()
      const identity = watchOnlyIdentity(this.#dids[index] as Did)
      member = await enrol(this.config, index, { identity, store: this.#store, ledger: this.#ledger, bus: createLocalBus(), task, shard: shards[index] as Shard, dir: this.dir, logger: this.#logger, keepContent: false })
      this.#members.set(name, member)
    }
    await member.catchUp()
    return member
  }

  /** When the ledger changed on disk (a run still going), reopens it; members are loaded again as asked for. */
  async refresh (): Promise<void> {
    const folder = join(this.dir, 'ledger')
    const stamp = await stampOf(folder)
    if (stamp === this.#stamp) return
    await this.#ledger.close()
    this.#ledger = await openLedger(folder, this.#logger)
    this.#stamp = stamp
    this.#members.clear()
  }

  async close (): Promise<void> {
    await this.#ledger.close()
    await this.#store.close()
    this.#task?.task.dispose()
  }

  async #loadTask (): Promise<{ task: Task, shards: Shard[] }> {
    if (this.#task === undefined) {
      const task = await loadTask(this.config.task, { logger: this.#logger })
      const shards = task.shards(this.#dids.length, { seed: this.config.seed, partition: this.config.partition.kind, alpha: this.config.partition.alpha })
      this.#task = { task, shards }
    }
    return this.#task
  }
}

async function openLedger (folder: string, logger: Logger): Promise<Ledger> {
  try {
    return await openLedgerDir(folder, { logger })
  } catch (err) {
    if (err instanceof EmptyLedgerError) throw new ConfigError(`${folder} holds no ledger yet: the run has not started`, { cause: err })
    throw err
  }
}

/** The charter's members, in order: who the run's agents are. */
async function charterMembers (ledger: Ledger): Promise<Did[]> {
  for await (const block of ledger.blocks()) {
    const { record } = peekRecord(block.record)
    if (record?.type === 'charter') return record.members
  }
  throw new ConfigError('the ledger has no charter yet: the run has not started')
}

/** Names, sizes and times of the ledger's files: it changed when this did. */
async function stampOf (folder: string): Promise<string> {
  const names = (await readdir(folder)).sort()
  const parts = await Promise.all(names.map(async n => { const s = await stat(join(folder, n)); return `${n}:${s.size}:${s.mtimeMs}` }))
  return parts.join('|')
}
