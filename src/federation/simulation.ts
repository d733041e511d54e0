import { join } from 'node:path'
import { ConfigError, DerivationMismatchError, NoCheckpointError, type ConclaveError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { POLICY } from '../core/records.ts'
import { loadOrCreateKeystore } from '../identity/index.ts'
import { createLedger, type Ledger } from '../ledger/index.ts'
import { createTrainer, type Trainer } from '../ml/pool/index.ts'
import { evalExamples, loadTask, type Shard, type Task } from '../ml/task.ts'
import { createContentStore, type ContentStore } from '../storage/index.ts'
import { createTeacher, type Teacher } from '../teachers/index.ts'
import type { Bus } from '../transport/index.ts'
import { createMemberBuses, type MemberBuses } from '../transport/members.ts'
import { memberName, type RunConfig } from './config.ts'
import { charterOf, enrol } from './enrol.ts'
import { autopilot, chatRules, type Driver, type DriverFactory } from './driver.ts'
import type { Participant } from './participant.ts'
import { SerialQueue } from '../core/serial-queue.ts'
import { SharedWork } from './shared-work.ts'
import { PhaseTimer, zeroPhases, type PhaseAttribution, type PhaseSeconds } from './phases.ts'
import type { RoundReport } from './report.ts'
import { fetchModel } from './content.ts'
import { RoundLoop, settlingClock, type RoundOptions, type RoundOutcome, type SettlingClock } from './round-loop.ts'

export interface SimulationOptions {
  /** The run directory: `ledger/`, `store/` and `keys/` go under it. */
  dir: string
  logger?: Logger
  /** What decides for each participant. @default the autopilot */
  driver?: DriverFactory
  /** Continue the run `dir` holds: participants catch up from its ledger, drivers from their memory. @default a new run */
  resume?: boolean
  /**
   * Worker threads that train the members' models, each one member's at a time, every
   * member's training started at once (src/ml/pool/); 1 trains on this thread, one member
   * after another. The same model either way. @default 1
   */
  trainWorkers?: number
  /** How the shared phase timer charges overlapping spans (phases.ts). @default innermost */
  phaseAttribution?: PhaseAttribution
}

interface SimulationParts {
  config: RunConfig
  task: Task
  store: ContentStore
  ledger: Ledger
  buses: MemberBuses
  names: Map<string, string>
  participants: Participant[]
  drivers: Driver[]
  shards: Shard[]
  /** The teacher every participant asks through its own cache and budget (tasks learned by distillation). */
  teacher?: Teacher
  trainer: Trainer
  clock: SettlingClock
  options: SimulationOptions
}

/**
 * A federation of N participants in one process, sharing one store and ledger the way
 * separate machines share IPFS and IOTA, and one room (on Matrix each through its own
 * account, as separate machines would). The simulation is only the round
 * loop's clock: its work is done when everyone has settled. Everything else is the
 * participants' own doing.
 */
export class Simulation {
  readonly config: RunConfig
  readonly task: Task
  readonly store: ContentStore
  readonly ledger: Ledger
  /** Every participant's bus (on Matrix, each its own account). */
  readonly buses: MemberBuses
  readonly participants: Participant[]
  readonly drivers: Driver[]
  readonly shards: Shard[]
  readonly teacher?: Teacher
  readonly rejections = new Map<string, Array<{ block: string, error: ConclaveError }>>()
  readonly #options: SimulationOptions
  /** One work queue for everyone: on one thread, no participant's work overlaps another's. */
  readonly #queue = new SerialQueue()
  /**
   * One clock for everyone: agents wait on their models off the queue, while others work,
   * and each instant is counted once (by the phase that began last, or under `precise` by
   * the member code that ran in it).
   */
  readonly #timer: PhaseTimer
  /** Merges of the same inputs and decoded updates, done once for everyone. */
  readonly shared: SharedWork
  readonly #names: Map<string, string>
  readonly #loop: RoundLoop
  /** Everyone's time, the ledger's included: a window that runs out unfilled passes at once. */
  readonly #clock: SettlingClock
  readonly #trainer: Trainer

  private constructor (parts: SimulationParts) {
    this.config = parts.config
    this.shared = new SharedWork(parts.config.agents)
    this.#timer = new PhaseTimer(parts.options.phaseAttribution)
    this.task = parts.task
    this.store = parts.store
    this.ledger = parts.ledger
    this.buses = parts.buses
    this.#names = parts.names
    this.participants = parts.participants
    this.drivers = parts.drivers
    this.shards = parts.shards
    this.teacher = parts.teacher
    this.#options = parts.options
    this.#trainer = parts.trainer
    this.#clock = parts.clock
    this.#loop = new RoundLoop({
      ahead: parts.trainer.parallel,
      seats: () => this.participants.map((participant, i) => ({ participant, driver: this.drivers[i] as Driver })),
      members: this.config.agents,
      windowSeconds: this.config.windowSeconds,
      clock: parts.clock
    })
  }

  static async create (config: RunConfig, options: SimulationOptions): Promise<Simulation> {
    const logger = options.logger ?? silentLogger
    options = { ...options, logger }
    const trainer = createTrainer({ workers: options.trainWorkers ?? 1 })
    const task = await loadTask(config.task, { logger, trainer: trainer.train })
    const shards = task.shards(config.agents, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha })
    const store = await createContentStore(config.store, { dir: join(options.dir, 'store'), logger })
    let sim: Simulation | undefined
    const clock = settlingClock(async () => sim?.settle())
    const ledger = await createLedger(config.ledger, { dir: join(options.dir, 'ledger'), logger, clock: clock.now })
    if (shards.length < config.agents) throw new ConfigError(`task gave ${shards.length} shards for ${config.agents} agents`)
    const names = new Map<string, string>() // DID → agent-N, filled in as participants enrol
    const members = Array.from({ length: config.agents }, (_, i) => memberName(i))
    const buses = await createMemberBuses(config.bus, { federation: config.federation, names: members, mine: members.map((_, i) => i), researchers: config.researchers, nameOf: did => names.get(did), logger })
    const teacher = task.teaching === undefined ? undefined : await createTeacher(config.teacher, task.teaching.pairs)
    sim = new Simulation({ config, task, store, ledger, buses, names, participants: [], drivers: [], shards, teacher, trainer, clock, options })
    for (let i = 0; i < config.agents; i++) sim.participants.push(await sim.#participant(i))
    for (const p of sim.participants) sim.#names.set(p.did, p.name)
    const resume = options.resume === true
    // Resuming, as restarted processes would: all catch up from the ledger (which makes no records) before any driver wakes.
    if (resume) {
      // The run's clock went on past what it waited for: its records are dated no earlier than its newest block.
      for await (const block of ledger.blocks()) clock.notBefore(block.time)
      for (const p of sim.participants) { await p.start(); await p.catchUp() }
    }
    for (const [i, p] of sim.participants.entries()) sim.drivers.push(await sim.#driver(p, i))
    if (!resume) for (const p of sim.participants) await p.start()
    // Then each driver finishes what it left undone: the autopilot judges what arrived while it was down.
    if (resume) for (const d of sim.drivers) await d.resume?.()
    await sim.settle()
    return sim
  }

  /** Unix seconds on the federation's clock, which runs ahead of the system's by every window that ran out unfilled: what a record signed now says. */
  now (): number {
    return this.#clock.now()
  }

  /** The first participant's bus: what it publishes comes from agent-1. */
  get bus (): Bus {
    return this.buses.of(0)
  }

  /** Participant `index` (agent-N) with its key from the run directory. */
  async #participant (index: number): Promise<Participant> {
    const { config, task, store, ledger } = this
    const bus = this.buses.of(index)
    const name = memberName(index)
    const identity = await loadOrCreateKeystore(join(this.#options.dir, 'keys', `${name}.key.json`))
    const list = this.rejections.get(name) ?? []
    this.rejections.set(name, list)
    const participant = await enrol(config, index, {
      identity, store, ledger, bus, task, shard: this.shards[index] as Shard, teacher: this.teacher,
      dir: this.#options.dir, driver: this.#options.driver, logger: this.#options.logger, queue: this.#queue, timer: this.#timer, shared: this.shared, fetchAhead: false, clock: this.#clock.now
    })
    participant.on('conclave:record:rejected', e => { list.push(e) })
    return participant
  }

  async #driver (participant: Participant, index: number): Promise<Driver> {
    const nameOf = (did: string): string => this.#names.get(did) ?? did
    const chat = chatRules(this.config)
    return (this.#options.driver ?? autopilot)(participant, { ledger: this.ledger, bus: this.buses.of(index), room: this.config.federation, nameOf, dir: join(this.#options.dir, 'agents', participant.name), chat, rounds: this.config.rounds })
  }

  /** The first participant founds the federation: members, quorum, window, initial model. */
  async charter (): Promise<RoundReport> {
    const start = performance.now()
    const founder = this.#founder()
    await founder.publishRecord(await charterOf(this.config, this.task, this.store, this.participants.map(p => p.did)))
    await this.settle()
    return this.#report(0, this.#takePhases(), (performance.now() - start) / 1000)
  }

  /**
   * Reports of the rounds the ledger already holds (none in a new run), their models scored
   * again from the store; their phases and times were not measured by this process.
   */
  async history (): Promise<RoundReport[]> {
    const state = this.#founder().state
    if (state.charter === undefined) return []
    const reports = []
    for (let round = 0; round <= (state.global?.round ?? 0); round++) {
      const ref = round === 0 ? state.charter.record.initial : state.rounds.get(round)?.checkpoint?.record.model
      if (ref === undefined) throw new NoCheckpointError(`the ledger has no checkpoint of round ${round}`)
      reports.push(await this.#report(round, zeroPhases(), 0, { ref, weights: await fetchModel(this.store, ref) }))
    }
    return reports
  }

  /** Rounds `from` to `to` through the round loop; `onRound` gets each one's report. */
  async run (rounds: { from: number, to: number }, options: RoundOptions & { onRound: (report: RoundReport) => void }): Promise<void> {
    await this.#loop.run(rounds, { ...options, onRound: async (round, outcome) => { options.onRound(await this.#finish(round, outcome)) } })
  }

  /** One round: everyone proposes, peers judge and vote, the window closes, all merge. */
  async round (round: number): Promise<RoundReport> {
    return this.#finish(round, await this.#loop.round(round))
  }

  /** The round's first half: each proposer trains and proposes; peers judge and vote. */
  async propose (round: number, proposers: readonly Participant[] = this.participants): Promise<void> {
    await this.#loop.open(round, { proposers })
  }

  /** The round's second half: the window closes, the recorder anchors, everyone merges and agrees. */
  async closeRound (round: number, start = performance.now()): Promise<RoundReport> {
    const { full } = await this.#loop.close(round)
    return this.#finish(round, { full, wallSeconds: (performance.now() - start) / 1000 })
  }

  /** After a round: every participant holds the same model; its report. */
  async #finish (round: number, outcome: RoundOutcome): Promise<RoundReport> {
    this.#assertConsensus(round)
    return this.#report(round, this.#takePhases(), outcome.wallSeconds)
  }

  /** Each phase's time since the last take, over all participants (they share one timer). */
  #takePhases (): PhaseSeconds {
    return this.#timer.take()
  }

  /** Waits until no participant has a message left to handle, bus deliveries included. */
  async settle (): Promise<void> {
    for (;;) {
      await new Promise(resolve => setImmediate(resolve))
      await this.buses.settled()
      if (this.participants.every(p => !p.busy) && this.drivers.every(d => !d.busy)) return
      await Promise.all([...this.participants.map(p => p.idle()), ...this.drivers.map(d => d.idle())])
    }
  }

  async close (): Promise<void> {
    for (const d of this.drivers) await d.close()
    for (const p of this.participants) p.stop()
    await this.#trainer.close()
    await this.buses.close()
    await this.ledger.close()
    await this.store.close()
    this.task.dispose()
    this.#timer.close()
  }

  /**
   * Restarts participant `index` as a crashed process would be restarted: the old one is
   * stopped mid-whatever (its driver killed), a new one loads the same key, replays the
   * ledger into its state, and its driver resumes from its own memory on disk.
   */
  async restart (index: number): Promise<Participant> {
    const old = this.participants[index]
    if (old === undefined) throw new ConfigError(`no participant ${index + 1}`)
    await this.drivers[index]?.kill?.()
    old.stop()
    const fresh = await this.#participant(index)
    await fresh.start()
    await fresh.catchUp()
    this.participants[index] = fresh
    const driver = await this.#driver(fresh, index)
    this.drivers[index] = driver
    await driver.resume?.()
    await this.settle()
    return fresh
  }

  #founder (): Participant {
    const founder = this.participants[0]
    if (founder === undefined) throw new ConfigError('a federation needs participants')
    return founder
  }

  #assertConsensus (round: number): void {
    const hashes = new Set(this.participants.map(p => p.globalModel?.ref.sha256))
    const rounds = new Set(this.participants.map(p => p.state.global?.round))
    if (hashes.size !== 1 || rounds.size !== 1 || !rounds.has(round)) {
      throw new DerivationMismatchError(`participants disagree after round ${round}: models ${[...hashes].join(', ')}, rounds ${[...rounds].join(', ')}`)
    }
  }

  /** The global model scored on the held-out test split: reporting only, never a protocol input. */
  async #report (round: number, phases: PhaseSeconds, wallSeconds: number, global = this.#founder().globalModel): Promise<RoundReport> {
    const observer = this.#founder()
    if (global === undefined) throw new ConfigError('no global model: the charter was not applied')
    const evaluation = await this.task.evaluate(global.weights, evalExamples(this.task, this.config.evalSplit))
    const proposals = [...observer.state.proposals.values()].filter(p => p.signed.record.round === round)
    const deciders = proposals.flatMap(p => [...p.votes.values()].flatMap(v => v.signed.record.decidedBy ?? []))
    return {
      round,
      proposals: proposals.length,
      accepts: proposals.filter(p => p.decision?.record.accepted === true).length,
      rejects: proposals.filter(p => p.decision?.record.accepted === false).length,
      ...(deciders.length === 0 ? {} : { modelVotes: deciders.filter(d => d !== POLICY).length / deciders.length }),
      metric: { name: evaluation.metricName, value: evaluation.metric },
      modelHash: global.ref.sha256,
      phases,
      wallSeconds,
      peakRssMiB: process.resourceUsage().maxRSS / 1024
    }
  }
}
