import { createHash } from 'node:crypto'
import { z } from 'zod'
import { InvalidRecordError, NotMemberError } from '../../core/errors.ts'
import { Did } from '../../core/records.ts'
import { signClaims, verifyClaims, type Identity } from '../../identity/index.ts'
import type { BusMessage } from '../../transport/index.ts'
import type { FederateRequest } from './federate-command.ts'

type Enrol = Extract<BusMessage, { kind: 'enrol' }>

/** The longest a convener's turn lasts before the next one's comes (a call's wait, where shorter). */
const MAX_STEP_SECONDS = 30
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
 * sends the roster, everyone who answered in the lobby's order, once all have or the call's
 * wait is over, and the roster's first member founds the federation (anchors the charter).
 * Every agent checks the roster against the enrolments it saw itself, so a convener can
 * list no one who did not sign nor leave out anyone who did, and only the lobby's own
 * accounts are heard.
 */
export class Call {
  readonly id: string
  readonly request: FederateRequest
  readonly #agents: readonly string[]
  /** Account → DID, in the order the room delivered the enrolments. */
  readonly #enrolled = new Map<string, Did>()
  #roster?: Did[]
  /** When the room took the call (Unix seconds, its own time for every member), where it says. */
  readonly at?: number
  /** Seconds between one convener's turn and the next's: the call's, so the same for every agent (their own settings could split them). */
  readonly step: number
  /** The turns my own clock says have come (less a tolerance for delivery skew): see accept. */
  #come = 0

  /**
   * `agents`: the lobby's accounts, in lobby order (as the bus names senders); `heard.at`:
   * the room's time for the call (a Delivery's `at`), where the room dates it.
   */
  constructor (id: string, request: FederateRequest, agents: readonly string[], heard: { at?: number } = {}) {
    this.id = id
    this.request = request
    this.#agents = agents
    if (heard.at !== undefined) this.at = heard.at
    this.step = Math.min(request.wait, MAX_STEP_SECONDS)
  }

  /** The accounts that answered, in the room's order: the k-th convenes in turn k (from 0). */
  get conveners (): readonly string[] {
    return [...this.#enrolled.keys()]
  }

  /** When turn `turn` comes, in seconds after the call: the first convener's once the wait is over, each next one a step later. */
  turnAt (turn: number): number {
    return this.request.wait + turn * this.step
  }

  /** My own clock, counting from when I heard the call, says turn `turn` has come. */
  turnCome (turn: number): void {
    this.#come = Math.max(this.#come, turn + 1)
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
   * Takes the convener's roster (`at`: the room's time for it, where it dates it). It must
   * be everyone who enrolled before it, in lobby order: every agent sees the room in the same
   * order, so each one's draft when the roster arrives is the same, and a convener cannot
   * leave an honest agent out nor pick the founder. And it must come once everyone has
   * answered or the call's wait is over, so the convener cannot cut the wait short for an
   * agent that has yet to answer. A convener that sends none does not stall the call: once
   * its turn is over the next to answer convenes (turnAt), so a roster must come from the
   * k-th account to answer, in turn k or later.
   *
   * Why two clocks: where the room dates both the call and the roster (a Matrix homeserver's
   * `origin_server_ts`, one clock for every member there), their difference is exact and
   * nobody's to set; an honest convener, whose timer runs from when it heard the call, cannot
   * be early by it. Where it does not (a researcher or convener on another homeserver, an
   * in-process bus), only my own clock since I heard the call is left, and another agent may
   * have heard it before me: the lobby calls turnCome a little before each turn comes by my
   * clock (lobby.ts), as much skew as it forgives. The first roster taken stands; a later one is refused.
   */
  accept (message: Roster, at?: number): readonly Did[] | undefined {
    if (message.call !== this.id) return undefined
    if (this.#roster !== undefined) throw new InvalidRecordError(`call ${this.id} has its roster already`)
    const turn = this.conveners.indexOf(message.from)
    if (turn < 0) throw new NotMemberError(`${message.from} did not answer the call, so it does not convene`)
    const come = this.at !== undefined && at !== undefined ? at - this.at >= this.turnAt(turn) : this.#come > turn
    if (!come && !(turn === 0 && this.complete)) {
      throw new InvalidRecordError(`${message.from} answered ${turn === 0 ? 'first' : `number ${turn + 1}`}, so it convenes ${this.turnAt(turn)} s after the call (at once if the first and every agent answered), and it sent the roster before`)
    }
    const draft = this.draft()
    if (message.members.some(d => !draft.includes(d))) throw new InvalidRecordError('the roster lists a DID that did not enrol')
    if (message.members.length !== draft.length || message.members.some((d, i) => d !== draft[i])) throw new InvalidRecordError('the roster is not everyone who enrolled before it, in lobby order')
    this.#roster = [...message.members]
    return this.#roster
  }
}
