import { join, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { z } from 'zod'
import { ConclaveError, ConfigError, UnexpectedCharterError } from '../../core/errors.ts'
import type { Charter, Did } from '../../core/records.ts'
import type { Task } from '../../ml/task.ts'
import { toSafetensors } from '../../ml/weights.ts'
import { sha256Hex } from '../content.ts'
import { silentLogger } from '../../core/logger.ts'
import { loadOrCreateKeystore } from '../../identity/index.ts'
import type { Subscription } from '../../transport/index.ts'
import { createMemberBuses, type MemberBuses } from '../../transport/members.ts'
import { memberName, parseRunConfig, type RunConfig } from '../config.ts'
import { holdingDir } from '../dir-lock.ts'
import { chatRules } from '../driver.ts'
import { MemberPart, runMember, type MemberConfig, type MemberOptions, type MemberReport } from '../member.ts'
import { makeFederationDir } from '../run-dir.ts'
import type { Call } from './call.ts'
import { Lobby, type Start } from './lobby.ts'

/**
 * What an agent in a lobby needs beyond the run settings it shares with the other agents
 * there: a member's part with no members. `member` is my place among the lobby's agents
 * (the order of `bus.accounts`, naming me agent-N there), and each federation I join keeps
 * its state in `dir/<federation>/`.
 */
const LobbyPart = MemberPart.omit({ members: true })

export interface LobbyConfig extends z.infer<typeof LobbyPart> {
  /** The lobby's settings, checked: its room is `federation`, its agents `agents` (one per `bus.accounts`). */
  run: RunConfig
  name: string
  /** The settings as given, which each federation's own config starts from. */
  settings: Readonly<Record<string, unknown>>
}

/**
 * Validates a lobby config: a member config with no `members` (and no task or rounds
 * needed), the federation's id naming the lobby's room. The bus must be Matrix: agents in
 * separate processes meet there, and the room names who sent what.
 */
export function parseLobbyConfig (input: unknown, base = process.cwd()): LobbyConfig {
  if (typeof input !== 'object' || input === null) throw new ConfigError('a lobby config must be a mapping of settings')
  const { member, key, dir, joinSeconds, members, ...settings } = input as Record<string, unknown>
  if (members !== undefined) throw new ConfigError('a lobby config names no members: whoever answers a !federate is one')
  const own = LobbyPart.safeParse({ member, key, dir, joinSeconds })
  if (!own.success) throw new ConfigError(`invalid lobby config:\n${z.prettifyError(own.error)}`)
  const accounts = (settings.bus as { accounts?: unknown[] } | undefined)?.accounts
  const run = parseRunConfig({ ...settings, agents: settings.agents ?? accounts?.length })
  if (run.bus.kind !== 'matrix') throw new ConfigError('a lobby meets in a Matrix room: set bus.kind to matrix')
  if (own.data.member > run.agents) throw new ConfigError(`member ${own.data.member} is not among the lobby's ${run.agents} agents`)
  const home = resolve(base, own.data.dir)
  run.bus.syncTokenFile = resolve(base, run.bus.syncTokenFile ?? join(home, 'sync-token'))
  return { ...own.data, key: resolve(base, own.data.key), dir: home, run, name: memberName(own.data.member - 1), settings }
}

/**
 * The run config of the federation a call starts: the lobby's settings, with what the
 * researcher asked for and the members who answered. Every agent derives the same one, and
 * it throws (ConfigError) where those settings cannot run (a quorum the members cannot reach).
 */
export function federationConfig (lobby: LobbyConfig, call: Call, federation: string, members: number): RunConfig {
  const { task, rounds, seed, quorum, committee } = call.request
  const own = lobby.settings.task as { kind?: unknown } | undefined
  return parseRunConfig({
    ...lobby.settings,
    federation,
    agents: members,
    rounds,
    task: own?.kind === task ? own : { kind: task },
    ...(seed === undefined ? {} : { seed }),
    ...(quorum === undefined ? {} : { quorum }),
    ...(committee === undefined ? {} : { committee })
  })
}

/** My member config in the federation `start` begins: my place in its roster picks my share of the data. */
export function memberConfigOf (lobby: LobbyConfig, start: Start, did: string): MemberConfig {
  const index = start.members.indexOf(did)
  if (index < 0) throw new ConfigError(`${did} is not on the roster of ${start.federation}`)
  const run = federationConfig(lobby, start.call, start.federation, start.members.length)
  return { member: index + 1, members: [...start.members], key: lobby.key, dir: join(lobby.dir, start.federation), joinSeconds: lobby.joinSeconds, run, name: memberName(index), room: lobby.run.federation }
}

/**
 * What a member of a call checks in the charter its founder anchors, before any round: the
 * federation, the roster, the task, the initial model (so the seed) and the quorum and
 * committee the call and the lobby's settings give. A founder cannot start another
 * federation than the one the researcher asked for and the members answered.
 */
export function expectCharter (run: RunConfig, members: readonly Did[]): (charter: Charter, task: Task) => void {
  return (charter, task) => {
    const wrong = [
      charter.federation !== run.federation && 'federation',
      !isDeepStrictEqual(charter.members, [...members]) && 'members',
      charter.task !== task.name && 'task',
      charter.initial.sha256 !== sha256Hex(toSafetensors(task.initialWeights(run.seed))) && 'initial model (the seed)',
      !isDeepStrictEqual(charter.quorum, run.quorum) && 'quorum',
      charter.committee !== run.committee && 'committee'
    ].filter(w => w !== false)
    if (wrong.length > 0) throw new UnexpectedCharterError(`the charter of ${charter.federation} differs from the call in its ${wrong.join(', ')}`)
  }
}

/**
 * `conclave agent --lobby`: an agent that waits in the lobby's room until an allow-listed
 * researcher's `!federate` calls a federation, runs it with the agents that answered (as
 * `conclave agent` runs a member), tells the call's thread how it ended, and waits for the
 * next call, until the signal aborts. Returns the reports of the federations it ran.
 */
export async function runLobby (config: LobbyConfig, options: MemberOptions = {}): Promise<MemberReport[]> {
  // One process at a time: a second would share the lobby's sync token and answer its calls too.
  return await holdingDir(config.dir, async () => lobbyLocked(config, options))
}

async function lobbyLocked (config: LobbyConfig, options: MemberOptions): Promise<MemberReport[]> {
  const { run } = config
  const logger = options.logger ?? silentLogger
  const say = options.say ?? (() => {})
  const identity = await loadOrCreateKeystore(config.key)
  const index = config.member - 1
  // Names in the room follow the federation's roster while one runs, the lobby's order otherwise.
  const names = new Map<string, string>()
  // Whose account is whose: those the members enrolled from, while a federation runs (its roster's order is not the lobby's).
  const accounts = new Map<string, string>()
  const lobbyNames = Array.from({ length: run.agents }, (_, i) => memberName(i))
  const buses = await createMemberBuses(run.bus, { federation: run.federation, names: lobbyNames, mine: [index], researchers: run.researchers, nameOf: did => names.get(did), accountOf: did => accounts.get(did), logger })
  const bus = buses.of(index)
  const account = bus.sender ?? config.name
  const lobby = new Lobby({
    identity, bus, room: run.federation, agents: buses.accounts, account, name: config.name, logger,
    chat: chatRules(run),
    check: (call, members) => { federationConfig(config, call, run.federation, members) }
  })
  // Inside the try: buses left open when the room cannot be listened to keep the process running.
  let subscription: Subscription | undefined
  try {
    subscription = await lobby.listen()
    // The federation talks on my lobby bus, whatever its roster calls me.
    const mine: MemberBuses = { of: () => bus, accounts: buses.accounts, settled: buses.settled, close: async () => {} }
    const reports: MemberReport[] = []
    const stopped = (): boolean => options.signal?.aborted === true
    say(`${config.name}: in the lobby ${run.federation}, waiting for a researcher's !federate`)
    while (!stopped()) {
      const start = await lobby.next({ signal: options.signal })
      names.clear()
      start.members.forEach((did, i) => names.set(did, memberName(i)))
      const byMember = start.call.accountsOf(start.members)
      accounts.clear()
      byMember?.forEach((account, i) => accounts.set(start.members[i] as string, account))
      say(`${config.name}: called to ${start.federation} with ${start.members.length} members`)
      try {
        const member = memberConfigOf(config, start, identity.did)
        await makeFederationDir(member.dir)
        // Whose hello is whose: the accounts the members enrolled from, in the charter's order.
        const ours = { ...mine, byMember }
        const report = await runMember(member, { ...options, buses: ours, stay: false, expect: expectCharter(member.run, start.members) })
        reports.push(report)
        // The founder adds the round table: one copy in the thread, not one per member.
        const table = start.members[0] === identity.did ? `\n${roundLines(report)}` : ''
        await tell(start, `${report.name} finished ${start.federation}: ${outcome(report)}${table}`)
      } catch (err) {
        if (stopped() || !(err instanceof ConclaveError)) throw err
        say(`${config.name}: ${start.federation} failed: ${err.message}`)
        await tell(start, `${start.federation} failed for me: ${err.name}: ${err.message}`)
      } finally {
        lobby.finished()
      }
    }
    return reports
  } finally {
    subscription?.unsubscribe()
    await buses.close()
  }

  async function tell (start: Start, body: string): Promise<void> {
    const me = names.get(identity.did) ?? config.name
    await bus.publish(run.federation, { kind: 'chat', from: me, body: body.startsWith(me) ? body : `${me}: ${body}`, inReplyTo: start.call.id, id: crypto.randomUUID() })
  }
}

/** A federation's result, as the call's thread reads it. */
function outcome (report: MemberReport): string {
  const last = report.rounds.at(-1)
  const metric = last === undefined ? 'no rounds' : `${report.rounds.length} rounds, ${last.metric.name} ${last.metric.value.toFixed(4)}`
  return `${metric}; model ${report.audit.modelHash ?? 'none'}; audit of my ledger copy ${report.audit.ok ? 'ok' : `FAILED (${report.audit.firstFailure?.error.name ?? 'unknown'})`}, ${report.audit.records} records.`
}

/** One line per round: what was decided, the metric, the model it ended with. */
function roundLines (report: MemberReport): string {
  return report.rounds.map(r => `round ${r.round}: ${r.accepts} accepted, ${r.rejects} rejected, ${r.metric.name} ${r.metric.value.toFixed(4)}, model ${r.modelHash.slice(0, 12)}`).join('\n')
}
