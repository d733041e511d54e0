import { BoundedMap } from '../core/bounded-map.ts'
import type { ChatRules } from './driver.ts'

/** Commands that change what an agent does; the others (`!status`, `!tools`) only read. */
export const ACTING_COMMANDS: ReadonlySet<string> = new Set(['pause', 'resume', 'propose', 'federate'])

/** Senders whose recent answers are remembered: a flood of new accounts cannot grow this without bound. */
const SENDERS_KEPT = 10_000

/**
 * What an agent does with a message addressed to it: `answer` it; `refuse` a command that
 * acts from someone who may not steer (once per sender and window, then `ignore`); `wait`,
 * one note to a sender past the limit (then `ignore` until the window has room); `busy`, one
 * note per window when everyone but the researchers together reached theirs.
 */
export type Admission = 'answer' | 'refuse' | 'wait' | 'busy' | 'ignore'

/**
 * The door between a room and an agent's model: commands that act only from the senders in
 * `steer`, at most `limit.messages` answers per sender in any `limit.seconds`, and at most
 * `limit.others` answers to everyone but `steer` together, so nobody can spend an agent's
 * model calls by flooding it, not with many accounts either, nor crowd out the researchers.
 */
export class ChatGate {
  readonly #rules: ChatRules
  readonly #now: () => number
  readonly #answered = new BoundedMap<string, number[]>(SENDERS_KEPT) // sender → times of answers in the window
  readonly #noted = new BoundedMap<string, number>(SENDERS_KEPT) // refusal or wait note, and sender → when it was last given
  #others: number[] = [] // times of answers in the window to senders not in steer

  /** `now` in ms; injected so tests need no clock. */
  constructor (rules: ChatRules, now: () => number = Date.now) {
    this.#rules = rules
    this.#now = now
  }

  /** Whether `command` (the word after `!`, or undefined for a question) from `from` gets an answer. */
  admit (from: string, command: string | undefined): Admission {
    const now = this.#now()
    const windowMs = this.#rules.limit.seconds * 1000
    if (command !== undefined && ACTING_COMMANDS.has(command) && !this.#rules.steer.has(from)) return this.#note('refuse', from, now, windowMs)
    const recent = (this.#answered.get(from) ?? []).filter(t => now - t < windowMs)
    if (recent.length >= this.#rules.limit.messages) return this.#note('wait', from, now, windowMs)
    if (!this.#rules.steer.has(from) && !this.#spend(now, windowMs)) return this.#note('busy', '', now, windowMs)
    this.#answered.set(from, [...recent, now])
    return 'answer'
  }

  /** Takes one of the window's answers to everyone but `steer`, if one is left. */
  #spend (now: number, windowMs: number): boolean {
    this.#others = this.#others.filter(t => now - t < windowMs)
    if (this.#others.length >= this.#rules.limit.others) return false
    this.#others.push(now)
    return true
  }

  /** What a `refuse`, `wait` or `busy` admission tells the sender of `command`; `open`: what it may still ask, as a phrase. */
  note (admission: 'refuse' | 'wait' | 'busy', command: string | undefined, open: string): string {
    if (admission === 'refuse') return `sorry, I take !${command} only from this federation's researchers. You can still ask me ${open}.`
    if (admission === 'busy') return `I have answered ${this.#rules.limit.others} messages within ${this.#rules.limit.seconds} s, as many as I answer then to anyone but this federation's researchers; I will answer again once that window has room.`
    return `you have sent me ${this.#rules.limit.messages} messages within ${this.#rules.limit.seconds} s; I will answer again once that window has room.`
  }

  /**
   * The note, if `from` (for `busy`: anyone) has not had this one within the window; else
   * silence. A note to someone not in `steer` is one of their answers too: many accounts
   * each sent one refusal would keep the agents posting (found red-teaming).
   */
  #note (note: 'refuse' | 'wait' | 'busy', from: string, now: number, windowMs: number): Admission {
    const key = `${note} ${from}`
    const last = this.#noted.get(key)
    if (last !== undefined && now - last < windowMs) return 'ignore'
    if (note !== 'busy' && !this.#rules.steer.has(from) && !this.#spend(now, windowMs)) return this.#note('busy', '', now, windowMs)
    this.#noted.set(key, now)
    return note
  }
}
