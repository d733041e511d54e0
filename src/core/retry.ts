import { setTimeout as pause } from 'node:timers/promises'
import { BackendUnavailableError } from './errors.ts'

/** Waits between tries of work that failed for a reason that may pass (a service that did not answer): 1, 2, 4, 8 and 16 s. */
export const RETRY_WAITS_S = [1, 2, 4, 8, 16] as const

/**
 * Runs `call`, and again after each of RETRY_WAITS_S while it fails with
 * BackendUnavailableError (a store or ledger that gave no answer in time may answer
 * later); the last failure is thrown. Any other error is thrown at once, and so is the
 * failure after which the next try would start past `lastTryBy` (ms since the epoch).
 */
export async function whileUnavailable<T> (call: () => Promise<T>, { signal, onRetry, lastTryBy = Infinity }: { signal?: AbortSignal, onRetry?: (err: BackendUnavailableError, seconds: number) => void, lastTryBy?: number } = {}): Promise<T> {
  for (const seconds of [...RETRY_WAITS_S, undefined]) {
    try {
      return await call()
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || seconds === undefined || Date.now() + seconds * 1000 > lastTryBy) throw err
      onRetry?.(err, seconds)
      await pause(seconds * 1000, undefined, { signal })
    }
  }
  throw new TypeError('unreachable')
}
