import { join } from 'node:path'
import { ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Charter, Did } from '../core/records.ts'
import type { SerialQueue } from '../core/serial-queue.ts'
import type { SharedWork } from './shared-work.ts'
import type { Identity } from '../identity/index.ts'
import type { Ledger } from '../ledger/index.ts'
import { judgeOf, type Shard, type Task } from '../ml/task.ts'
import type { ContentStore } from '../storage/index.ts'
import { CachedTeacher } from '../teachers/cache.ts'
import type { Teacher } from '../teachers/index.ts'
import type { Bus } from '../transport/index.ts'
import { termsOf } from './acceptance-terms.ts'
import { memberName, memberSeed, type RunConfig } from './config.ts'
import { putModel } from './content.ts'
import { autopilot, type DriverFactory } from './driver.ts'
import { Participant } from './participant.ts'
import type { PhaseTimer } from './phases.ts'

/**
 * How a run config becomes members and a charter, the same whether all members share one
 * process (Simulation) or each runs as its own (`conclave agent`).
 */

export interface Enrolment {
  identity: Identity
  store: ContentStore
  ledger: Ledger
  bus: Bus
  /** The bus room the federation talks in. @default the federation's id */
  room?: string
  task: Task
  shard: Shard
  /** The task's teacher (tasks learned by distillation); each member gets its own cache and budget. */
  teacher?: Teacher
  /** Where the member's own files go, under `agents/<name>/`: its teacher cache index, what its compressed updates owe. */
  dir: string
  /** Who decides for it: the autopilot judges and votes by itself, an agent through tools. */
  driver?: DriverFactory
  logger?: Logger
  queue?: SerialQueue
  timer?: PhaseTimer
  shared?: SharedWork
  fetchAhead?: boolean
  /** Pin what this member's copy needs (ParticipantInit.keepContent). @default true */
  keepContent?: boolean
  /** Unix seconds, for record times. @default the system clock */
  clock?: () => number
}

/** Member `index` (0-based, named agent-N) of a run: the config sets its seed, vote rule, attack and teacher budget. */
export async function enrol (config: RunConfig, index: number, parts: Enrolment): Promise<Participant> {
  const name = memberName(index)
  // Each member pays its own teacher budget; answers are shared through the content store.
  const teacher = parts.teacher === undefined
    ? undefined
    : { cache: await CachedTeacher.open(parts.teacher, parts.store, join(parts.dir, 'agents', name, 'teacher-index.json'), { budgetTokens: config.teacher.budgetTokens }), maxTokens: config.teacher.maxTokens }
  return new Participant({
    name,
    identity: parts.identity,
    store: parts.store,
    ledger: parts.ledger,
    bus: parts.bus,
    room: parts.room ?? config.federation,
    task: parts.task,
    shard: parts.shard,
    teacher,
    seed: memberSeed(config, index),
    dir: join(parts.dir, 'agents', name),
    terms: termsOf(config, judgeOf(parts.task)),
    attack: config.attacks.find(a => a.agent === index + 1),
    allies: config.attacks.filter(a => a.kind === 'collude').map(a => a.agent),
    autoVote: parts.driver === undefined || parts.driver === autopilot,
    logger: parts.logger,
    queue: parts.queue,
    timer: parts.timer,
    shared: parts.shared,
    fetchAhead: parts.fetchAhead,
    keepContent: parts.keepContent,
    clock: parts.clock
  })
}

/** The charter the founder anchors: the members, the rules (acceptance terms included), and the initial model (put in the store). */
export async function charterOf (config: RunConfig, task: Task, store: ContentStore, members: Did[]): Promise<Charter> {
  // Members could not measure what the rule decides from, and would refuse their own votes.
  if ((config.acceptance === 'classwise' || config.acceptance === 'standing' || config.acceptance === 'probation') && judgeOf(task).byClass === undefined) throw new ConfigError(`acceptance: ${config.acceptance} needs a judge that scores class by class, which ${task.name}'s has not (classify's and ner's with judge: logLikelihood have; sentences class by their first entity)`)
  const initial = await putModel(store, task.initialWeights(config.seed))
  // Every member's share is derived from the run's seed, so the founder can state what each trains on.
  const samples = task.shards(members.length, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha }).map(s => task.samples(s))
  // Researchers, and what their reactions weigh, only where there are some: a charter without them is the one runs always wrote.
  const people = config.researchers.length === 0 ? {} : { researchers: config.researchers, humanVotes: config.humanVotes, ...witnessesOf(config, members.length) }
  const committee = config.committee === undefined ? {} : { committee: config.committee, committeeDraw: 'place' as const }
  // No compression stays off the record: the charter runs always wrote.
  const compression = config.compression.kind === 'none' ? {} : { compression: config.compression }
  return { type: 'charter', federation: config.federation, round: 0, members, quorum: config.quorum, windowSeconds: config.windowSeconds, aggregation: config.aggregation, momentum: config.momentum, task: task.name, initial, samples, acceptance: termsOf({ ...config, judgement: config.agent.judgement }, judgeOf(task)), ...committee, ...compression, ...people }
}

/** The charter's `humanWitnesses`: the config's, else two where researchers' votes are counted; one is left off (the charter runs wrote before it). */
function witnessesOf (config: Pick<RunConfig, 'humanVotes' | 'humanWitnesses'>, members: number): { humanWitnesses?: number } {
  const witnesses = config.humanWitnesses ?? (config.humanVotes === 'counted' ? Math.min(2, members) : 1)
  return witnesses === 1 ? {} : { humanWitnesses: witnesses }
}
