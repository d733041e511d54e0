/**
 * `call`, settled as soon as `signal` aborts (rejecting with its reason), whether or not the
 * callee heeds the signal: ChatOllama reads its signal only between streamed chunks, so a
 * server that takes a request and never answers would otherwise hold its caller forever.
 */
export async function abortable<T> (call: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', abort, { once: true })
    call.then(resolve, reject).finally(() => { signal.removeEventListener('abort', abort) })
  })
}
