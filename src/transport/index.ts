import { z } from 'zod'
import type { AbortOptions } from '../core/options.ts'
import { BackendUnavailableError, ConclaveError, ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { BlockId, Did, MatrixUserId, MAX_RECORD_BYTES } from '../core/records.ts'
import { SecretField, ServiceUrl } from '../core/secret.ts'

/** A room is one federation's channel (a Matrix room later). */
export const RoomId = z.string().regex(/^[a-zA-Z0-9!#:._-]{1,255}$/, 'expected a room id')

/**
 * A block of the replicated tangle (src/ledger/replica.ts) as it travels: everything but
 * `seq`, which each copy assigns in its own ingest order. Receivers check it all again.
 */
export const ReplicaBlock = z.object({
  id: BlockId,
  parents: z.array(BlockId).max(2),
  record: z.string().min(1).max(MAX_RECORD_BYTES),
  time: z.number().int().positive(),
  pow: z.number().int().nonnegative()
}).strict()
export type ReplicaBlock = z.infer<typeof ReplicaBlock>

/**
 * What travels on the bus. Records are only ever announced as the signed JWT plus the
 * block that anchors it: receivers verify both and trust neither the sender nor the bus.
 * Replicas of a replicated ledger exchange their blocks here too.
 */
export const BusMessage = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('record'),
    block: BlockId,
    jwt: z.string().min(1).max(MAX_RECORD_BYTES)
  }).strict(),
  z.object({
    kind: z.literal('chat'),
    /** Who wrote it: a DID, or a researcher's account name. */
    from: z.string().min(1).max(255),
    body: z.string().min(1).max(8000),
    /** The message this one answers, for threads. */
    inReplyTo: z.string().max(255).optional(),
    /** Its name, for answers to it: the sender's, or on a bus that vouches for senders the bus's own (on Matrix its event id). */
    id: z.string().min(1).max(255)
  }).strict(),
  z.object({ kind: z.literal('block'), block: ReplicaBlock }).strict(),
  /** A replica lacks this block, a parent of blocks it holds waiting: copies that hold it publish it again. */
  z.object({ kind: z.literal('want'), block: BlockId }).strict(),
  z.object({
    /**
     * A person's reaction on a proposal's notice, as the room saw it: only a room makes one
     * (Matrix: an `m.reaction` event, its sender named by the homeserver); nobody publishes one.
     */
    kind: z.literal('reaction'),
    /** Who reacted, as the room names them (a Matrix user id). */
    from: z.string().min(1).max(255),
    key: z.string().min(1).max(64),
    /** The reaction's own event id. */
    event: z.string().min(1).max(255),
    /** The proposal whose notice it reacts to. */
    proposal: BlockId
  }).strict(),
  z.object({
    /**
     * An agent in a lobby answers a researcher's `!federate` (src/federation/lobby/): `jwt`
     * is its DID's signature over the call and the account it talks as, so the room's word
     * for the sender binds the account to the DID.
     */
    kind: z.literal('enrol'),
    /** The account that sent it, as the room names it (a Matrix id; as published on the local bus). */
    from: z.string().min(1).max(255),
    /** The `!federate` message answered (its id). */
    call: z.string().min(1).max(255),
    jwt: z.string().min(1).max(MAX_RECORD_BYTES)
  }).strict(),
  z.object({
    /** Who of those that answered a call federate, in charter order: sent by the agent that answered first, or in its turn by the k-th (lobby/call.ts). */
    kind: z.literal('roster'),
    from: z.string().min(1).max(255),
    call: z.string().min(1).max(255),
    members: z.array(Did).min(2).max(64)
  }).strict(),
  z.object({
    /**
     * Presence: a process says it after subscribing, so a founder can wait until every
     * member listens (a Matrix room delivers only what comes after one joined).
     */
    kind: z.literal('hello'),
    did: Did,
    name: z.string().min(1).max(64)
  }).strict()
])
export type BusMessage = z.infer<typeof BusMessage>

/**
 * What the bus says of one delivery. `at`: when the room took the message, in Unix seconds,
 * the same for every subscriber (a Matrix room: the homeserver's time for the event); absent
 * on a bus that keeps no such time. `from`: who sent it, as the room vouches (a Matrix
 * account); absent on a bus that cannot tell (in-process). `ack`: a subscriber that finishes
 * with the message after its handler returns (queued work) hands that work here; a bus that
 * resumes after a restart (Matrix's sync token) resumes before a message whose work had not
 * settled, so a process killed meanwhile is handed it again. Absent on a bus that does not resume.
 */
export interface Delivery { at?: number, from?: string, ack?: (work: Promise<unknown>) => void }

export type BusHandler = (message: BusMessage, delivery?: Delivery) => void | Promise<void>
export type MessageKind = BusMessage['kind']

/** Whether a subscriber for `kinds` (absent: every kind) takes `message`. */
export const wantsKind = (kinds: ReadonlySet<MessageKind> | undefined, message: BusMessage): boolean => kinds?.has(message.kind) ?? true

export interface SubscribeOptions extends AbortOptions {
  /**
   * Only messages of these kinds reach the handler (absent: every kind). A bus that holds
   * messages for late subscribers (Matrix) holds a message until someone listens for its kind.
   */
  kinds?: readonly MessageKind[]
}

export interface Subscription {
  unsubscribe(): void
}

/**
 * Typed publish/subscribe per room. Delivery is at-least-once and in publish order per
 * publisher; handlers see only messages that pass the `BusMessage` schema, and a handler
 * that throws does not stop delivery to the others.
 */
export interface Bus {
  /**
   * Who this bus's messages come from, as its subscribers see it: chat messages arrive with
   * this `from` (the Matrix account it talks as). Absent on a bus that carries `from` as published.
   */
  readonly sender?: string
  publish(room: string, message: BusMessage, options?: AbortOptions): Promise<void>
  subscribe(room: string, handler: BusHandler, options?: SubscribeOptions): Promise<Subscription>
  /**
   * Resolves once every message this bus published has been delivered to its subscribers
   * (for a network bus: once each has come back through the network). A simulation waits on
   * it to know a round has settled.
   */
  settled?(): Promise<void>
  /**
   * What the room holds under a reaction's event id: who sent it, its key and the proposal
   * whose notice it reacts to; undefined if the room holds no such reaction. Absent on a bus
   * with no room to ask (the local bus): whoever anchors a reaction is then taken at its word.
   */
  reaction?(room: string, event: string, options?: AbortOptions): Promise<{ from: string, key: string, proposal?: BlockId } | undefined>
  close(): Promise<void>
}

/** A Matrix account a member talks as: its id, and its access token unless it comes from the environment. */
export const MatrixAccountConfig = z.object({ userId: MatrixUserId, accessToken: SecretField }).strict()

export const MatrixBusConfig = z.object({
  kind: z.literal('matrix'),
  /** Homeserver base URL, e.g. http://127.0.0.1:8008 */
  baseUrl: ServiceUrl,
  /**
   * The one Matrix account this process talks as (`conclave agent`), e.g. @conclave:localhost.
   * `conclave run` gives each agent its own account instead (`accounts` or `registrationSecret`).
   */
  userId: MatrixUserId.optional(),
  /**
   * Its access token. Better left out, with CONCLAVE_MATRIX_TOKEN set instead: a token in a
   * config is never written anywhere (config.json and the reports say `[redacted]`).
   */
  accessToken: SecretField,
  /**
   * One account per member, in member order: in `conclave run` agent-N talks as the Nth; a
   * member process talks as its own and invites the others to the room. Each token is best
   * left out, with CONCLAVE_MATRIX_TOKEN_<N> set instead.
   */
  accounts: z.array(MatrixAccountConfig).min(1).max(64).optional(),
  /**
   * The homeserver's registration shared secret (Synapse's `registration_shared_secret`):
   * each agent without an account in `accounts` gets its own, `@<federation>.agent-N`,
   * registered on first use and logged into afterwards with a password derived from the
   * secret (never stored). Better left out, with CONCLAVE_MATRIX_REGISTRATION_SECRET set instead.
   */
  registrationSecret: SecretField,
  /**
   * Anyone may join and read the room. @default false: the room is invite-only, its members'
   * accounts and the run's researchers invited
   */
  public: z.boolean().default(false),
  /** Where the sync token is kept across restarts. */
  syncTokenFile: z.string().optional()
}).strict()
export type MatrixBusConfig = z.infer<typeof MatrixBusConfig>

export const BusConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }).strict(),
  MatrixBusConfig
])
export type BusConfig = z.infer<typeof BusConfig>

/**
 * One bus by config, talking as the config's one account; call sites pick a backend by
 * config. The members of a run each get their own account through createMemberBuses (members.ts).
 */
export async function createBus (config: BusConfig, options: { logger?: Logger } = {}): Promise<Bus> {
  switch (config.kind) {
    case 'local': return (await import('./local.ts')).createLocalBus()
    case 'matrix': {
      const accessToken = config.accessToken?.reveal() ?? process.env.CONCLAVE_MATRIX_TOKEN
      if (accessToken === undefined || accessToken === '') throw new ConfigError('bus.kind matrix needs an accessToken (or CONCLAVE_MATRIX_TOKEN)')
      if (config.userId === undefined) throw new ConfigError('bus.kind matrix needs the userId its accessToken belongs to')
      const { createMatrixBus } = await import('./matrix.ts')
      try {
        return await createMatrixBus({ baseUrl: config.baseUrl, userId: config.userId, accessToken, syncTokenFile: config.syncTokenFile, room: { public: config.public }, logger: options.logger })
      } catch (err) {
        throw matrixStartError(err, { baseUrl: config.baseUrl, userId: config.userId })
      }
    }
  }
}

/**
 * Why a Matrix bus could not start, as a named error: the homeserver refusing the account's
 * token is a config problem; not answering (its first sync retried, then given up) is an
 * unavailable backend, named with the command that starts a local one.
 */
export function matrixStartError (err: unknown, config: { baseUrl: string, userId: string }): Error {
  if (err instanceof ConclaveError) return err
  const status = (err as { httpStatus?: number }).httpStatus
  if (status === 401 || status === 403) return new ConfigError(`${config.baseUrl} refused the access token of ${config.userId} (HTTP ${status}): check bus.accessToken or CONCLAVE_MATRIX_TOKEN`, { cause: err })
  return new BackendUnavailableError(`the Matrix homeserver at ${config.baseUrl} did not answer ${config.userId}'s first sync (${(err as Error).message}): \`scripts/services/synapse.sh up\` starts a local one`, { cause: err })
}
