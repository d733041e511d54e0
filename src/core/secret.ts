import { inspect } from 'node:util'
import { z } from 'zod'

/** What a secret reads as wherever it is written, printed or logged. */
export const REDACTED = '[redacted]'

/**
 * A credential from a config (an access token). Serialised (`JSON.stringify`), interpolated
 * or inspected it is `[redacted]`, so config.json, report.json and the logs cannot carry
 * it by accident; only `reveal()`, at the one place a backend is built, gives the value.
 */
export class Secret {
  readonly #value: string

  constructor (value: string) {
    this.#value = value
  }

  reveal (): string {
    return this.#value
  }

  toJSON (): string {
    return REDACTED
  }

  toString (): string {
    return REDACTED
  }

  [inspect.custom] (): string {
    return REDACTED
  }
}

/**
 * A secret config field. `[redacted]` reads as absent, so a config Conclave wrote parses
 * again, the secret coming from the environment as when it was never in a file.
 */
export const SecretField = z.union([
  z.literal(REDACTED).transform(() => undefined),
  z.string().min(1).transform(value => new Secret(value))
]).optional()

/** A service's URL: credentials in it would be written down with it (config.json, reports, logs), so it may carry none. */
export const ServiceUrl = z.url().refine(url => {
  // Refinements run even when the URL check failed: that failure is reported, not this one.
  if (!URL.canParse(url)) return true
  const { username, password } = new URL(url)
  return username === '' && password === ''
}, 'a service URL may not carry a user or password: they would be written to config.json and the reports')
