import { randomUUID } from 'node:crypto'
import { ConclaveError, NotEnoughAgentsError } from '../../core/errors.ts'
import { silentLogger, type Logger } from '../../core/logger.ts'
import type { Did } from '../../core/records.ts'
import type { Identity } from '../../identity/index.ts'
import type { Bus, BusMessage, Delivery, Subscription } from '../../transport/index.ts'
import { ChatGate } from '../chat-gate.ts'
import type { ChatRules } from '../driver.ts'
import { leadingMentions } from '../mentions.ts'
import { Call, enrolment, federationOf } from './call.ts'
import { FEDERATE_USAGE, parseFederate } from './federate-command.ts'

/** What an agent in a lobby is doing: waiting for a call, answering one, or federating. */
export type LobbyPhase = 'idle' | 'enrolling' | 'federating'

/** A federation a call started with me in it: the call, its federation and the roster, founder first. */
export interface Start { call: Call, federation: string, members: readonly Did[] }

export interface LobbyInit {
  identity: Identity
  bus: Bus
  /** The lobby's room on the bus. */
  room: string
  /** Every agent's account in the lobby, in lobby order, as the bus names senders (mine among them). */
  agents: readonly string[]
  /** My account among `agents`. */
  account: string
  /** My name in the room (`agent-2`): replies start with it. */
  name: string
  /** Who may start a federation (the researchers; the agents' own accounts never ask), and how often anyone is answered. */
  chat: ChatRules
  /**
   * Throws (a ConclaveError, its message told to the room) when a call's settings cannot run
   * with this many members: the convener checks before its roster, every member after it.
   */
  check: (call: Call, members: number) => void
  /**
   * Seconds after the last convener's turn that an agent waits for its roster before giving
   * up; each convener after the first has min(this, 30 s) for its turn. @default 60
   */
  graceSeconds?: number
  logger?: Logger
  /** Milliseconds since the epoch, for the chat gate's windows. @default Date.now */
  now?: () => number
}

/**
 * An agent waiting in a room for a researcher to start a federation. An allow-listed
 * researcher's `!federate task=… rounds=…` is a call: every agent present signs an
 * enrolment, the first to answer sends the roster (call.ts), and each agent on it gets a
 * Start from `next()`. Anyone else's `!federate` (or `!pause`…) gets the chat gate's
 * refusal and changes nothing; a bad command gets a reply naming what is wrong. The
 * lobby's first agent speaks for all (refusals, errors, busy), or the agent addressed by
 * name; each agent answers `!status`. While it federates, the lobby leaves the room to
 * the federation's own chat.
 */
export class Lobby {
  readonly #init: LobbyInit
  readonly #gate: ChatGate
  readonly #logger: Logger
  #phase: LobbyPhase = 'idle'
  #call?: Call
  #federation?: string
  #waiting?: NodeJS.Timeout
  #convening?: NodeJS.Timeout
  #convened?: Call
  #givingUp?: NodeJS.Timeout
  readonly #starts: Start[] = []
  #waiter?: (start: Start) => void

  constructor (init: LobbyInit) {
    this.#init = init
    this.#gate = new ChatGate(init.chat, init.now)
    this.#logger = init.logger ?? silentLogger
  }

  get phase (): LobbyPhase { return this.#phase }

  async listen (): Promise<Subscription> {
    const subscription = await this.#init.bus.subscribe(this.#init.room, async (m, delivery) => this.#receive(m, delivery), { kinds: ['chat', 'enrol', 'roster'] })
    return { unsubscribe: () => { subscription.unsubscribe(); this.#clearTimers() } }
  }

  /** The next federation I am a member of. */
  async next (options: { signal?: AbortSignal } = {}): Promise<Start> {
    const ready = this.#starts.shift()
    if (ready !== undefined) return ready
    return new Promise((resolve, reject) => {
      const abort = (): void => { this.#waiter = undefined; reject(options.signal?.reason) }
      if (options.signal?.aborted === true) return abort()
      options.signal?.addEventListener('abort', abort, { once: true })
      this.#waiter = start => { options.signal?.removeEventListener('abort', abort); resolve(start) }
    })
  }

  /** The federation `next()` gave has ended: back to waiting for a call. */
  finished (): void {
    this.#reset()
  }

  async #receive (message: BusMessage, delivery?: Delivery): Promise<void> {
    try {
      if (message.kind === 'chat') await this.#chat(message, delivery?.at)
      else if (message.kind === 'enrol') await this.#enrolled(message)
      else if (message.kind === 'roster') await this.#rostered(message, delivery?.at)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      this.#logger.warn(`${this.#init.name}: ignored a lobby message`, { kind: message.kind, error: err.name, reason: err.message })
    }
  }

  /** `at`: the room's time for the message, where it dates it. */
  async #chat (message: Extract<BusMessage, { kind: 'chat' }>, at?: number): Promise<void> {
    const { agents, account, name } = this.#init
    if (agents.includes(message.from) || message.from === account || message.from === name) return
    // While I federate, my agent answers the room (a new !federate included); an autopilot is silent.
    if (this.#phase === 'federating') return
    const { names: addressed, text } = leadingMentions(message.body)
    if (addressed.length > 0 && !addressed.includes(name)) return // addressed to someone else
    const [, command, args = ''] = /^!\s*(\S+)\s*([\s\S]*)$/.exec(text) ?? []
    if (command === undefined && addressed.length === 0) return // talk among people
    const speaker = agents[0] === account || addressed.length > 0
    const admission = this.#gate.admit(message.from, command?.toLowerCase())
    if (admission === 'ignore' || (admission !== 'answer' && !speaker)) return
    if (admission !== 'answer') return this.#reply(message.id, this.#gate.note(admission, command, '!status'))
    switch (command?.toLowerCase()) {
      case 'federate': return this.#federate(message.id, args, speaker, at)
      case 'status': return this.#reply(message.id, this.#status())
      default: if (speaker) await this.#reply(message.id, `I am in the lobby: ${this.#status()} Start a federation of the agents here with ${FEDERATE_USAGE}, or ask !status.`)
    }
  }

  async #federate (id: string, args: string, speaker: boolean, at?: number): Promise<void> {
    if (this.#phase !== 'idle') {
      if (speaker) await this.#reply(id, `busy: ${this.#status()} Call again once it ends.`)
      return
    }
    let call: Call
    try {
      call = new Call(id, parseFederate(args), this.#init.agents, { at })
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      if (speaker) await this.#reply(id, `I cannot start that federation: ${err.message}`)
      return
    }
    this.#phase = 'enrolling'
    this.#call = call
    this.#federation = federationOf(this.#init.room, id)
    this.#turn(call, 0, call.request.wait * 1000)
    await this.#init.bus.publish(this.#init.room, await enrolment(this.#init.identity, id, this.#init.account))
  }

  async #enrolled (message: Extract<BusMessage, { kind: 'enrol' }>): Promise<void> {
    const call = this.#call
    if (this.#phase !== 'enrolling' || call === undefined || await call.enrol(message) === undefined) return
    if (call.conveners[0] === this.#init.account && call.complete) return this.#convene(call)
  }

  /**
   * Turn `turn` of the call's conveners comes in `delay` ms: its convener (the turn-th to
   * answer) sends the roster unless one has come, and the next turn follows a step later;
   * after the last, I give up a grace later. Timers run from when I heard the call, not from
   * my own enrolment's return: a roster is taken once its turn has come since the call
   * (call.ts), and an honest convener's must be. Where the room does not date the roster, I
   * take a turn as come up to min(5 s, wait/10) early by my clock: an agent that heard the
   * call before me sends its roster before my turn comes, and delivery to me is rarely
   * seconds slower than to it.
   */
  #turn (call: Call, turn: number, delay: number): void {
    const early = Math.min(5000, call.request.wait * 100)
    this.#waiting = setTimeout(() => { call.turnCome(turn) }, Math.max(0, delay - early))
    this.#convening = setTimeout(() => {
      if (this.#call !== call || this.#phase !== 'enrolling') return
      // The next turn first: convening may refuse the call and reset, clearing it.
      if (turn + 1 < call.conveners.length) this.#turn(call, turn + 1, call.step * 1000)
      else {
        this.#givingUp = setTimeout(() => {
          if (this.#call !== call || this.#phase !== 'enrolling') return
          this.#logger.warn(`${this.#init.name}: no roster for call ${call.id}; back in the lobby`)
          this.#reset()
        }, this.#grace * 1000)
      }
      if (call.conveners[turn] !== this.#init.account) return
      this.#convene(call).catch((err: unknown) => { this.#logger.warn(`${this.#init.name}: could not send the roster`, { error: (err as Error).message }) })
    }, delay)
  }

  get #grace (): number {
    return this.#init.graceSeconds ?? 60
  }

  /** As a convener: the roster of those who answered, once everyone has or my turn has come. */
  async #convene (call: Call): Promise<void> {
    if (this.#call !== call || this.#phase !== 'enrolling' || this.#convened === call) return
    this.#convened = call // the roster is sent (or the call refused) once; the turns go on, should it not stand
    const members = call.draft()
    try {
      if (members.length < 2) throw new NotEnoughAgentsError(`only ${members.length} agent answered within ${call.request.wait} s, and a federation needs 2`)
      this.#init.check(call, members.length)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      this.#reset()
      return this.#reply(call.id, `I cannot start that federation: ${err.message}`)
    }
    await this.#init.bus.publish(this.#init.room, { kind: 'roster', from: this.#init.account, call: call.id, members })
  }

  async #rostered (message: Extract<BusMessage, { kind: 'roster' }>, at?: number): Promise<void> {
    const call = this.#call
    if (this.#phase !== 'enrolling' || call === undefined || this.#federation === undefined) return
    const members = call.accept(message, at)
    if (members === undefined) return
    if (!members.includes(this.#init.identity.did)) {
      this.#logger.warn(`${this.#init.name}: the roster of call ${call.id} does not list me; back in the lobby`)
      return this.#reset()
    }
    this.#init.check(call, members.length)
    this.#clearTimers()
    this.#phase = 'federating'
    const start = { call, federation: this.#federation, members }
    const waiter = this.#waiter
    this.#waiter = undefined
    if (waiter === undefined) this.#starts.push(start)
    else waiter(start)
  }

  #status (): string {
    const me = this.#init.name
    switch (this.#phase) {
      case 'idle': return `${me} is in the lobby, waiting for a researcher's !federate.`
      case 'enrolling': return `${me} has answered the call to federate ${this.#federation ?? ''}, and waits for its roster.`
      case 'federating': return `${me} is federating in ${this.#federation ?? ''}.`
    }
  }

  async #reply (to: string, body: string): Promise<void> {
    const me = this.#init.name
    await this.#init.bus.publish(this.#init.room, { kind: 'chat', from: me, body: (body.startsWith(`${me} `) ? body : `${me}: ${body}`).slice(0, 8000), inReplyTo: to, id: randomUUID() })
  }

  #reset (): void {
    this.#clearTimers()
    this.#phase = 'idle'
    this.#call = undefined
    this.#federation = undefined
  }

  #clearTimers (): void {
    clearTimeout(this.#waiting)
    clearTimeout(this.#convening)
    clearTimeout(this.#givingUp)
    this.#waiting = undefined
    this.#convening = undefined
    this.#givingUp = undefined
  }
}
