import { AsyncLocalStorage } from 'node:async_hooks'
import { setTimeout as pause } from 'node:timers/promises'
import { createClient, MatrixError, type MatrixClient } from 'matrix-js-sdk'
import type { Logger as SdkLogger } from 'matrix-js-sdk/lib/logger.js'
import { BackendUnavailableError } from '../../core/errors.ts'
import { silentLogger, type Logger } from '../../core/logger.ts'
import { fromHomeserver } from './homeserver.ts'

/** How long a request keeps retrying while the homeserver is unreachable (a restart). */
const UNREACHABLE_MS = 120_000
/** The pause between tries while it is unreachable. */
export const RETRY_MS = 500
/** The longest wait a rate limit gets, whatever the server asks. */
const RATE_LIMIT_MAX_MS = 30_000

export interface RequestOptions {
  logger?: Logger
  /** Cancels the waits between tries (and the next try). */
  signal?: AbortSignal
  /** How many M_LIMIT_EXCEEDED answers are waited out. @default 5 */
  tries?: number
}

/**
 * The redirect the try under way was refused (fromHomeserver), if any: matrix-js-sdk wraps
 * whatever its fetch throws in a ConnectionError, which would read as unreachable and be retried.
 */
const refusals = new AsyncLocalStorage<{ refused?: BackendUnavailableError }>()

/**
 * Runs a homeserver request, waiting out M_LIMIT_EXCEEDED as the server asks, and retrying
 * while the homeserver cannot be reached or answers 502–504 (restarting), for up to two
 * minutes. A send keeps its transaction id across retries, so the server stores it once.
 */
export async function request<T> (call: () => Promise<T>, { logger = silentLogger, signal, tries = 5 }: RequestOptions = {}): Promise<T> {
  const started = Date.now()
  for (let i = 0; ; i++) {
    signal?.throwIfAborted()
    const attempt: { refused?: BackendUnavailableError } = {}
    try {
      return await refusals.run(attempt, call)
    } catch (err) {
      if (attempt.refused !== undefined) throw attempt.refused
      if (err instanceof MatrixError && err.errcode === 'M_LIMIT_EXCEEDED' && i < tries) {
        const wait = Number((err.data as { retry_after_ms?: number }).retry_after_ms ?? 1000)
        logger.warn('rate limited by the homeserver; waiting as asked', { retryAfterMs: wait })
        await pause(Math.min(wait, RATE_LIMIT_MAX_MS), undefined, { signal })
        continue
      }
      const unreachable = err instanceof MatrixError ? [502, 503, 504].includes(err.httpStatus ?? 0) : (err as Error).name === 'ConnectionError'
      if (unreachable && Date.now() - started < UNREACHABLE_MS) {
        logger.warn('homeserver unreachable; retrying', { error: (err as Error).message })
        await pause(RETRY_MS, undefined, { signal })
        continue
      }
      throw err
    }
  }
}

/**
 * matrix-js-sdk's client, used for its HTTP layer only; its warnings and errors reach our logger.
 * It follows no redirect: a request goes to the homeserver at `baseUrl` or fails.
 */
export function matrixClient (options: { baseUrl: string, userId: string, accessToken: string, pollMs: number, logger: Logger }): MatrixClient {
  // No request waits forever on a homeserver that accepts and never answers: a /sync long-poll
  // answers within pollMs, anything else within seconds; a timed-out request is retried as unreachable.
  return createClient({ baseUrl: options.baseUrl, userId: options.userId, accessToken: options.accessToken, logger: sdkLogger(options.logger), localTimeoutMs: options.pollMs + 30_000, fetchFn: toHomeserver })
}

/** The client's fetch: every request through fromHomeserver, a refusal noted for `request`, which gives up on it. */
async function toHomeserver (resource: string | URL | Request, init?: RequestInit): Promise<Response> {
  try {
    return await fromHomeserver(resource, init)
  } catch (err) {
    const attempt = refusals.getStore()
    if (err instanceof BackendUnavailableError && attempt !== undefined) attempt.refused = err
    throw err
  }
}

/** The SDK logs every request; only its warnings and errors reach our logger. */
function sdkLogger (logger: Logger): SdkLogger {
  const quiet = (): void => {}
  const self: SdkLogger = {
    trace: quiet,
    debug: quiet,
    info: quiet,
    warn: (...msg: unknown[]) => { logger.warn(`matrix-js-sdk: ${msg.map(String).join(' ')}`) },
    error: (...msg: unknown[]) => { logger.warn(`matrix-js-sdk error: ${msg.map(String).join(' ')}`) },
    getChild: () => self
  }
  return self
}
