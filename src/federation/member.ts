import { join, resolve } from 'node:path'
import { z } from 'zod'
import { BackendUnavailableError, ConfigError } from '../core/errors.ts'
import { writeAtomic } from '../core/files.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { Did, type Charter } from '../core/records.ts'
import { loadOrCreateKeystore, type Identity } from '../identity/index.ts'
import { createLedger, type Ledger } from '../ledger/index.ts'
import { evalExamples, loadTask, type Task } from '../ml/task.ts'
import { createContentStore, type ContentStore } from '../storage/index.ts'
import { createTeacher } from '../teachers/index.ts'
import { createMemberBuses, type MemberBuses } from '../transport/members.ts'
import { audit, type AuditReport } from './audit.ts'
import { memberName, parseRunConfig, type RunConfig } from './config.ts'
import { holdingDir } from './dir-lock.ts'
import { autopilot, chatRules, type Driver, type DriverFactory } from './driver.ts'
import { charterOf, enrol } from './enrol.ts'
import { sealRunDir } from './head.ts'
import type { Participant } from './participant.ts'
import { RoundLoop, wallClock, type RoundOutcome, type RoundProgress } from './round-loop.ts'
import { assertMemberDir, takeMemberDir } from './run-dir.ts'

/**
 * What one member process needs beyond a run config: who it is among the members, its key
 * and where its state lives. The run config's `agents` is the number of members.
 */
export const MemberPart = z.object({
  /** My 1-based position in `members`: it picks my share of the data and names me agent-N. */
  member: z.number().int().min(1),
  /** Every member's DID, in order; the first founds the federation (anchors its charter). */
  members: z.array(Did).min(2).max(64),
  /** My keystore (`conclave key FILE` creates one and prints its DID). */
  key: z.string().min(1),
  /** My state: the ledger copy, the agent's memory, the teacher cache index, report.json. */
  dir: z.string().min(1),
  /** How long the founder waits for every member to be listening before the charter. @default 300 */
  joinSeconds: z.number().int().positive().max(86_400).default(300)
})

export interface MemberConfig extends z.infer<typeof MemberPart> {
  run: RunConfig
  name: string
  /** The bus room the federation talks in. @default its federation's id (a lobby's federations talk in the lobby's room) */
  room?: string
}

/** Validates a member config: the member part, then the rest as a run config with `agents` = the number of members. */
export function parseMemberConfig (input: unknown, base = process.cwd()): MemberConfig {
  if (typeof input !== 'object' || input === null) throw new ConfigError('a member config must be a mapping of settings')
  const { member, members, key, dir, joinSeconds, ...rest } = input as Record<string, unknown>
  const own = MemberPart.safeParse({ member, members, key, dir, joinSeconds })
  if (!own.success) throw new ConfigError(`invalid member config:\n${z.prettifyError(own.error)}`)
  if (own.data.member > own.data.members.length) throw new ConfigError(`member ${own.data.member} is not among the ${own.data.members.length} members`)
  if (new Set(own.data.members).size !== own.data.members.length) throw new ConfigError('members lists a DID twice')
  const run = parseRunConfig({ ...rest, agents: own.data.members.length })
  const home = resolve(base, own.data.dir)
  // A member resumes the room where it stopped: its sync token is kept in its dir unless placed elsewhere.
  if (run.bus.kind === 'matrix') run.bus.syncTokenFile = resolve(base, run.bus.syncTokenFile ?? join(home, 'sync-token'))
  return { ...own.data, key: resolve(base, own.data.key), dir: home, run, name: memberName(own.data.member - 1) }
}

export interface MemberRound { round: number, metric: { name: string, value: number }, accepts: number, rejects: number, modelHash: string }

export interface MemberReport {
  name: string
  did: string
  rounds: MemberRound[]
  /** The audit of this member's own copy of the ledger, against the shared store. */
  audit: AuditReport
  /** The id of the head this member signed (`head.json` in its dir); absent when its audit failed. */
  head?: string
}

export interface MemberOptions {
  logger?: Logger
  signal?: AbortSignal
  /** Who decides for this member. @default the autopilot */
  driver?: DriverFactory
  /** Lines for the person running the process. */
  say?: (line: string) => void
  /** Keep serving chat (and the room) after the last round until the signal aborts. */
  stay?: boolean
  /** The room's buses, opened (and closed) by the caller: a lobby's, which outlives its federations. @default opened here */
  buses?: MemberBuses
  /** Throws (a ConclaveError) on a charter the member did not agree to, before any round. @default any charter its founder anchors */
  expect?: (charter: Charter, task: Task) => void
}

/**
 * One member of a federation as its own process (`conclave agent`): it shares the content
 * store and the bus room with the other members, keeps its own copy of the ledger, and
 * runs the round loop on a wall clock. A round closes, for me, when every member's
 * proposal and every peer's vote on it is in, or when the validation window has passed;
 * the round's recorder then anchors the decisions and checkpoint, which everyone checks
 * against their own merge. While it runs it holds its dir (dir-lock.ts), so a second process
 * there is refused; a killed one's lock is free.
 */
export async function runMember (config: MemberConfig, options: MemberOptions = {}): Promise<MemberReport> {
  const identity = await loadOrCreateKeystore(config.key)
  if (identity.did !== config.members[config.member - 1]) throw new ConfigError(`${config.key} holds ${identity.did}, but member ${config.member} is ${config.members[config.member - 1]}`)
  // Checked before the lock is taken (a folder not the member's gets no lock file), and again under it.
  await assertMemberDir(config.dir)
  // One process at a time: two would interleave their lines in the ledger copy and damage it for good.
  return await holdingDir(config.dir, async () => {
    await takeMemberDir(config.dir)
    return await runLocked(config, identity, options)
  })
}

/**
 * A copy made after the charter refuses it as an earlier run's (copy-made.ts), so a member whose
 * directory was lost waits in vain: it starts again from a peer's copy, which it checks as it opens.
 */
const LOST_COPY_HINT = '; if it was chartered before this directory was made (the directory lost), copy a peer\'s ledger/ folder into it and start again (README, "Run a federation across machines")'

async function runLocked (config: MemberConfig, identity: Identity, options: MemberOptions): Promise<MemberReport> {
  const { run } = config
  const logger = options.logger ?? silentLogger
  const say = options.say ?? (() => {})
  // What this member has opened, closed however far the opening got: on Matrix a bus left
  // open keeps the process running after its error.
  const opened: { task?: Task, store?: ContentStore, buses?: MemberBuses, ledger?: Ledger, participant?: Participant, driver?: Driver } = {}
  try {
    const task = opened.task = await loadTask(run.task, { logger })
    const shard = task.shards(config.members.length, { seed: run.seed, partition: run.partition.kind, alpha: run.partition.alpha })[config.member - 1]
    if (shard === undefined) throw new ConfigError(`the task gave no share for member ${config.member}`)
    const store = opened.store = await createContentStore(run.store, { dir: join(config.dir, 'store'), logger })
    const names = new Map(config.members.map((did, i) => [did, memberName(i)]))
    const buses = options.buses ?? (opened.buses = await createMemberBuses(run.bus, { federation: run.federation, names: config.members.map((_, i) => memberName(i)), mine: [config.member - 1], researchers: run.researchers, nameOf: did => names.get(did), logger }))
    const bus = buses.of(config.member - 1)
    const room = config.room ?? run.federation
    // The first member anchors the charter: until then, my copy keeps only its blocks, and holds only the named members' early ones.
    // Members' accounts have wants answered beside others' (gaps.ts): a lobby's agents outside the roster are others.
    const ledger = opened.ledger = await createLedger(run.ledger, { dir: join(config.dir, 'ledger'), bus, room, identity, founder: config.members[0], members: config.members, federation: run.federation, accounts: buses.byMember ?? buses.accounts, logger })
    const teacher = task.teaching === undefined ? undefined : await createTeacher(run.teacher, task.teaching.pairs)
    const participant = opened.participant = await enrol(run, config.member - 1, { identity, store, ledger, bus, room, task, shard, teacher, dir: config.dir, driver: options.driver, logger })
    const chat = chatRules(run)
    const driver = opened.driver = await (options.driver ?? autopilot)(participant, { ledger, bus, room, nameOf: did => names.get(did) ?? did, dir: join(config.dir, 'agents', config.name), chat, rounds: run.rounds })
    const clock = wallClock(participant, { driver })
    const until = async (done: () => boolean, seconds: number): Promise<boolean> => clock.until(done, seconds, { signal: options.signal })
    const log = (event: RoundProgress): void => { logger.info(`${config.name}: ${event.type}`, { ...event }) }

    await participant.start()
    await participant.catchUp()
    // My copy already held the charter: I was restarted, and owe what I had not done when I stopped.
    const restarted = participant.state.charter !== undefined
    const heard = new Set<string>([identity.did])
    // Hellos are not signed, but a room that names who sent them (Matrix) vouches: a member
    // listens only when its own account says so. Anyone's hello for a member would otherwise have
    // the founder charter before that member's copy was made, which then refuses the charter.
    const accountOf = new Map((buses.byMember ?? []).map((account, i) => [config.members[i], account]))
    const hello = await bus.subscribe(room, (m, delivery) => {
      if (m.kind !== 'hello') return
      const account = accountOf.get(m.did)
      if (account === undefined || delivery?.from === undefined || delivery.from === account) heard.add(m.did)
    }, { kinds: ['hello'] })
    // Say hello until the charter is anchored: a member that joins later than my first hello still hears one.
    const greet = async (): Promise<void> => { await bus.publish(room, { kind: 'hello', did: identity.did, name: config.name }) }
    await greet()
    const greeter = setInterval(() => { if (participant.state.charter === undefined) greet().catch(() => {}) }, 2000)
    try {
      if (config.member === 1 && participant.state.charter === undefined) {
        say(`${config.name}: waiting for ${config.members.length - 1} members to listen…`)
        if (!await until(() => config.members.every(d => heard.has(d)), config.joinSeconds)) {
          throw new BackendUnavailableError(`only ${heard.size} of ${config.members.length} members said hello within ${config.joinSeconds} s: ${config.members.filter(d => !heard.has(d)).map(d => names.get(d)).join(', ')} missing`)
        }
        await participant.publishRecord(await charterOf(run, task, store, config.members))
      }
      if (!await until(() => participant.globalModel !== undefined, config.joinSeconds)) throw new BackendUnavailableError(`no charter from ${names.get(config.members[0] as string)} within ${config.joinSeconds} s${config.member === 1 ? '' : LOST_COPY_HINT}`)
    } finally {
      clearInterval(greeter)
      hello.unsubscribe()
    }
    const charter = participant.state.charter
    if (charter !== undefined) options.expect?.(charter.record, task)
    if (restarted) await driver.resume?.()
    say(`${config.name}: federation ${run.federation} chartered; ${run.rounds} rounds`)

    const rounds: MemberRound[] = []
    const loop = new RoundLoop({ seats: () => [{ participant, driver }], members: config.members.length, windowSeconds: run.windowSeconds, clock })
    const onRound = async (round: number, { full }: RoundOutcome): Promise<void> => {
      const global = participant.globalModel
      if (global === undefined) throw new BackendUnavailableError('no global model')
      const evaluation = await task.evaluate(global.weights, evalExamples(task, run.evalSplit))
      const decided = (participant.state.rounds.get(round)?.proposals ?? []).map(id => participant.state.proposals.get(id)?.decision?.record.accepted)
      const result = { round, metric: { name: evaluation.metricName, value: evaluation.metric }, accepts: decided.filter(a => a === true).length, rejects: decided.filter(a => a === false).length, modelHash: global.ref.sha256 }
      rounds.push(result)
      say(`${config.name}: round ${round}${full ? '' : ' (window closed before every vote was in)'}: ${result.accepts} accepted, ${result.rejects} rejected, ${result.metric.name} ${result.metric.value.toFixed(4)}`)
    }
    await loop.run({ from: (participant.state.global?.round ?? 0) + 1, to: run.rounds }, { signal: options.signal, onProgress: log, onRound })

    const checked = await audit(ledger, store)
    // My copy as it ends, signed by me: what `conclave audit DIR` checks it against.
    const head = checked.modelHash === null || run.ledger.kind === 'iota' ? undefined : (await sealRunDir(config.dir, { federation: run.federation, model: checked.modelHash, signers: [identity] })).id
    const report: MemberReport = { name: config.name, did: identity.did, rounds, audit: checked, head }
    // Replaced whole: a link planted there since the start is replaced, not written through.
    await writeAtomic(join(config.dir, 'report.json'), JSON.stringify(report, null, 2) + '\n')
    say(`${config.name}: audit of my ledger copy ${checked.ok ? 'ok' : `FAILED (${checked.firstFailure?.error.message})`}: ${checked.records} records, model ${checked.modelHash}${head === undefined ? '' : `, head ${head}`}`)
    if (options.stay === true && options.signal !== undefined && !options.signal.aborted) {
      say(`${config.name}: staying in the room to answer questions (stop with Ctrl-C)`)
      await new Promise(resolve => options.signal?.addEventListener('abort', resolve, { once: true }))
    }
    return report
  } finally {
    await opened.driver?.close()
    opened.participant?.stop()
    await opened.buses?.close()
    await opened.ledger?.close()
    await opened.store?.close()
    opened.task?.dispose()
  }
}
