import { createHash } from 'node:crypto'
import { z } from 'zod'
import { InvalidRecordError, NotMemberError } from '../../core/errors.ts'
import { Did } from '../../core/records.ts'
import { signClaims, verifyClaims, type Identity } from '../../identity/index.ts'
import type { BusMessage } from '../../transport/index.ts'
import type { FederateRequest } from './federate-command.ts'

type Enrol = Extract<BusMessage, { kind: 'enrol' }>
type Roster = Extract<BusMessage, { kind: 'roster' }>

/** What an agent signs to answer a call: the call, and the account it answers from. */
const EnrolClaims = z.object({ type: z.literal('conclave-enrol'), call: z.string(), account: z.string() }).strict()

/** My answer to the call `call`, sent from `account`: signed by my DID. */
export async function enrolment (identity: Identity, call: string, account: string): Promise<Enrol> {
  return { kind: 'enrol', from: account, call, jwt: await signClaims(identity, { type: 'conclave-enrol', call, account }) }
}

/** The federation a call starts: the lobby's room name and the call's digest, the same for everyone who heard it. */
export function federationOf (room: string, call: string): string {
  return `${room.slice(0, 52)}.f${createHash('sha256').update(call).digest('hex').slice(0, 10)}`
}

/**
 * One researcher's `!federate`, as the agents of a lobby answer it. Each agent present signs
 * an enrolment; the first to answer (in the room's order, the same for all) convenes: it
 * sends the roster, everyone who answered in time in the lobby's order, and the roster's
 * first member founds the federation (anchors the charter). Every agent checks the
 * roster against the enrolments it saw itself, so a convener can list no one who did not
 * sign, and only the lobby's own accounts are heard.
 */
export class Call {
  readonly id: string
  readonly request: FederateRequest
  readonly #agents: readonly string[]
  /** Account → DID, in the order the room delivered the enrolments. */
  readonly #enrolled = new Map<string, Did>()
  #roster?: Did[]

  /** `agents`: the lobby's accounts, in lobby order (as the bus names senders). */
  constructor (id: string, request: FederateRequest, agents: readonly string[]) {
    this.id = id
    this.request = request
    this.#agents = agents
  }

  /** Checks an enrolment and notes its DID; an answer to another call is none of mine (undefined). */
  async enrol (message: Enrol): Promise<Did | undefined> {
    if (message.call !== this.id) return undefined
    if (!this.#agents.includes(message.from)) throw new NotMemberError(`${message.from} is not one of this lobby's agents`)
    const { issuer, claims } = await verifyClaims(message.jwt)
    const parsed = EnrolClaims.safeParse(claims)
    if (!parsed.success || parsed.data.call !== this.id || parsed.data.account !== message.from) throw new InvalidRecordError(`${message.from}'s enrolment is not signed for this call and account`)
    const known = this.#enrolled.get(message.from)
    if (known !== undefined) return known
    if ([...this.#enrolled.values()].includes(issuer)) throw new InvalidRecordError(`${issuer} answered from two accounts`)
    this.#enrolled.set(message.from, issuer)
    return issuer
  }

  /** The account that answered first: it sends the roster. */
  get convener (): string | undefined {
    return this.#enrolled.keys().next().value
  }

  /** Every agent of the lobby answered: nobody is left to wait for. */
  get complete (): boolean {
    return this.#enrolled.size === this.#agents.length
  }

  /** The members as I know them now, in lobby order: the roster a convener sends. */
  draft (): Did[] {
    return this.#agents.flatMap(a => this.#enrolled.get(a) ?? [])
  }

  /** The account each of `members` enrolled from (the room vouches for it), in their order; undefined when one did not enrol. */
  accountsOf (members: readonly Did[]): string[] | undefined {
    const byDid = new Map([...this.#enrolled].map(([account, did]) => [did, account]))
    const accounts = members.map(did => byDid.get(did))
    return accounts.every((a): a is string => a !== undefined) ? accounts : undefined
  }

  /** The roster once accepted. */
  get roster (): readonly Did[] | undefined {
    return this.#roster
  }

  /**
   * Takes the convener's roster: each member one I saw enrol, none twice, in lobby order.
   * The first roster taken stands; a later one is refused.
   */
  accept (message: Roster): readonly Did[] | undefined {
    if (message.call !== this.id) return undefined
    if (this.#roster !== undefined) throw new InvalidRecordError(`call ${this.id} has its roster already`)
    if (message.from !== this.convener) throw new NotMemberError(`${message.from} did not answer first, so it does not convene`)
    const order = this.draft()
    const positions = message.members.map(d => order.indexOf(d))
    if (positions.some(p => p < 0)) throw new InvalidRecordError('the roster lists a DID that did not enrol')
    if (positions.some((p, i) => i > 0 && p <= (positions[i - 1] as number))) throw new InvalidRecordError('the roster is not in lobby order, or lists a member twice')
    this.#roster = [...message.members]
    return this.#roster
  }
}
