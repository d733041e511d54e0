import { DeadlineError } from './errors.ts'

/**
 * `call`, settled as soon as `signal` aborts (rejecting with its reason), whether or not the
 * callee heeds the signal: ChatOllama reads its signal only between streamed chunks, so a
 * server that takes a request and never answers would otherwise hold its caller forever.
 */
async function abortable<T> (call: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', abort, { once: true })
    call.then(resolve, reject).finally(() => { signal.removeEventListener('abort', abort) })
  })
}

/**
 * `call` given a signal that aborts when `signal` does or `ms` pass (a DeadlineError), and
 * settled then whether or not it heeds it. Its timer and its listener on `signal` end with the
 * call: AbortSignal.timeout and AbortSignal.any kept each call's signals alive past it (the
 * timer for its whole span, the combined signal as long as the turn's), and an agent's model
 * calls grew the heap by 4.5 MiB a round (bench:memory).
 */
export async function withDeadline<T> (ms: number, signal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  signal?.throwIfAborted()
  const bound = new AbortController()
  const timer = setTimeout(() => { bound.abort(new DeadlineError(`no answer within ${ms / 1000} s`)) }, ms)
  const stop = (): void => { bound.abort(signal?.reason) }
  signal?.addEventListener('abort', stop, { once: true })
  try {
    return await abortable(call(bound.signal), bound.signal)
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', stop)
  }
}
