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

/** `url`'s parts, or undefined where it is no URL: that failure is the one reported, and refinements run after it all the same. */
const parts = (url: string): URL | undefined => URL.canParse(url) ? new URL(url) : undefined

/**
 * A service's URL: credentials in it would be written down with it (config.json, reports,
 * logs), so it may carry none: no user or password, and no query or fragment, where a
 * proxy's `?token=` or a provider's `?apikey=` goes. Conclave addresses no service by a query:
 * the Matrix, kubo and Ollama URLs are bases their API paths are appended to, which a query
 * would break, and the IOTA URL is a node's JSON-RPC endpoint.
 */
export const ServiceUrl = z.url()
  .refine(url => {
    const u = parts(url)
    return u === undefined || (u.username === '' && u.password === '')
  }, 'a service URL may not carry a user or password: they would be written to config.json and the reports')
  .refine(url => {
    const u = parts(url)
    return u === undefined || (u.search === '' && u.hash === '')
  }, 'a service URL may not carry a query or fragment: it would be written to config.json and the reports; give a token in the environment as the README says (CONCLAVE_MATRIX_TOKEN), never in a URL')
