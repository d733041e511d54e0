import { ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { serverOf } from '../core/records.ts'
import { createBus, matrixStartError, type Bus, type BusConfig, type MatrixBusConfig } from './index.ts'
import type { MatrixAccount } from './matrix-admin.ts'

export interface MemberBusesInit {
  /** The federation: its room, and the prefix of accounts registered for its members. */
  federation: string
  /** Every member's name, in member order (`agent-1`, …). */
  names: readonly string[]
  /** The members this process runs, by 0-based index: all of them in `conclave run`, one in `conclave agent`. */
  mine: readonly number[]
  /** Researchers' Matrix ids: invited to a room this process creates. */
  researchers?: readonly string[]
  /** Members' names for their DIDs, for the notices people read (may fill in later). */
  nameOf?: (did: string) => string | undefined
  /**
   * The account each member's DID talks as (may fill in later): only a proposer's own notice of
   * its proposal takes votes and reactions. @default the account, in member order, of the name `nameOf` gives it
   */
  accountOf?: (did: string) => string | undefined
  logger?: Logger
}

/** The buses of the members one process runs. */
export interface MemberBuses {
  /** Member `index`'s bus. */
  of(index: number): Bus
  /** Every member's account on the bus, where it has one (Matrix ids): whose messages are a member's. */
  readonly accounts: readonly string[]
  /** The same in member order, where every member has one: whose is whose (absent where the order is not the members': a lobby's own buses, which each federation it starts sets from its enrolments). */
  readonly byMember?: readonly string[]
  /** Resolves when everything any of these buses sent has reached every one of them. */
  settled(): Promise<void>
  close(): Promise<void>
}

/**
 * The buses of a process's members: in process, one bus they all share; on Matrix, each
 * member its own account (so a room tells agent-2 from agent-5, and each vote's reaction
 * counts), with its own /sync, all settling together.
 */
export async function createMemberBuses (config: BusConfig, init: MemberBusesInit): Promise<MemberBuses> {
  if (config.kind === 'local') {
    const bus = await createBus(config)
    return { of: () => bus, accounts: [], settled: async () => { await bus.settled?.() }, close: async () => { await bus.close() } }
  }
  const { createMatrixBus, EchoGroup } = await import('./matrix.ts')
  const opened = new Map<number, MatrixAccount & { session?: true }>()
  for (const index of init.mine) opened.set(index, await openAccount(config, init, index))
  // The sessions this process opened (registered or logged in) end with it; given tokens are the owner's.
  const endSessions = async (): Promise<void> => {
    const { logout } = await import('./matrix-admin.ts')
    for (const account of opened.values()) if (account.session === true) await logout(config.baseUrl, account.accessToken).catch(() => {})
  }
  const accounts = memberIds(config, init, opened)
  const accountOf = init.accountOf ?? (accounts.length === init.names.length ? (did: string) => accounts[init.names.indexOf(init.nameOf?.(did) ?? '')] : undefined)
  const peers = new EchoGroup()
  const buses = new Map<number, Bus>()
  try {
    for (const [index, account] of opened) {
      const name = init.names[index] as string
      // One sync token per account: several members of one process must not share a file.
      const syncTokenFile = config.syncTokenFile === undefined || init.mine.length === 1 ? config.syncTokenFile : `${config.syncTokenFile}.${name}`
      const bus = await createMatrixBus({
        baseUrl: config.baseUrl, userId: account.userId, accessToken: account.accessToken, syncTokenFile, name, nameOf: init.nameOf, peers, logger: init.logger,
        ...(accountOf === undefined ? {} : { accountOf }),
        room: { invite: [...accounts, ...init.researchers ?? []], public: config.public }
      }).catch((err: unknown) => { throw matrixStartError(err, { baseUrl: config.baseUrl, userId: account.userId }) })
      buses.set(index, bus)
    }
  } catch (err) {
    for (const bus of buses.values()) await bus.close()
    await endSessions()
    throw err
  }
  return {
    of: (index) => {
      const bus = buses.get(index)
      if (bus === undefined) throw new ConfigError(`member ${index + 1} is not run by this process`)
      return bus
    },
    accounts,
    byMember: accounts.length === init.names.length ? accounts : undefined,
    settled: async () => { for (const bus of buses.values()) await bus.settled?.() },
    close: async () => {
      for (const bus of buses.values()) await bus.close()
      await endSessions()
    }
  }
}

/** The registration shared secret, from the config or the environment. */
function registrationSecret (config: MatrixBusConfig): string | undefined {
  return config.registrationSecret?.reveal() ?? (process.env.CONCLAVE_MATRIX_REGISTRATION_SECRET || undefined)
}

/** The account a member registered through the shared secret has: `@<federation>.<name>`. */
function localpart (init: MemberBusesInit, index: number): string {
  return `${init.federation}.${init.names[index] as string}`
}

/**
 * Member `index`'s account, logged in: listed in `accounts` (its token from the config or
 * CONCLAVE_MATRIX_TOKEN_<N>); the process's one `userId` where it runs one member; else
 * registered (or logged into) through the shared secret.
 */
async function openAccount (config: MatrixBusConfig, init: MemberBusesInit, index: number): Promise<MatrixAccount & { session?: true }> {
  const listed = config.accounts?.[index]
  if (listed !== undefined) {
    // A member process may give its own token as for its one account.
    const own = init.mine.length === 1 ? config.accessToken?.reveal() ?? process.env.CONCLAVE_MATRIX_TOKEN : undefined
    const accessToken = listed.accessToken?.reveal() ?? process.env[`CONCLAVE_MATRIX_TOKEN_${index + 1}`] ?? own
    if (accessToken === undefined || accessToken === '') throw new ConfigError(`bus.accounts[${index}] (${listed.userId}) needs an accessToken (or CONCLAVE_MATRIX_TOKEN_${index + 1})`)
    return { userId: listed.userId, accessToken }
  }
  if (config.userId !== undefined && init.mine.length === 1) {
    const accessToken = config.accessToken?.reveal() ?? process.env.CONCLAVE_MATRIX_TOKEN
    if (accessToken === undefined || accessToken === '') throw new ConfigError('bus.kind matrix needs an accessToken (or CONCLAVE_MATRIX_TOKEN)')
    return { userId: config.userId, accessToken }
  }
  const secret = registrationSecret(config)
  if (secret === undefined) {
    throw new ConfigError(`on Matrix each agent talks as its own account, and ${init.names[index]} has none: set bus.registrationSecret (or CONCLAVE_MATRIX_REGISTRATION_SECRET) to register them, or list one per agent in bus.accounts`)
  }
  const { memberAccount } = await import('./matrix-admin.ts')
  return { ...await memberAccount(config.baseUrl, secret, localpart(init, index)), session: true }
}

/** Every member's Matrix id that can be known here: listed, opened, or registered on the same server as mine. */
function memberIds (config: MatrixBusConfig, init: MemberBusesInit, opened: ReadonlyMap<number, MatrixAccount>): string[] {
  const first = [...opened.values()][0]
  const server = first === undefined ? undefined : serverOf(first.userId)
  const secret = registrationSecret(config) !== undefined
  return init.names.flatMap((_, index) => {
    const id = opened.get(index)?.userId ?? config.accounts?.[index]?.userId ?? (secret && server !== undefined ? `@${localpart(init, index)}:${server}` : undefined)
    return id === undefined ? [] : [id]
  })
}
