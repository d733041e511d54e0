import { describe, expect, it } from 'vitest'
import { BackendUnavailableError, InvalidRecordError } from '../../src/core/errors.ts'
import { whileUnavailable } from '../../src/core/retry.ts'

describe('whileUnavailable', () => {
  it('tries again while the service does not answer, after waits it reports', async () => {
    let calls = 0
    const waits: number[] = []
    const value = await whileUnavailable(async () => { if (++calls < 3) throw new BackendUnavailableError('no answer'); return 'ok' }, { onRetry: (_, s) => waits.push(s) })
    expect({ value, calls, waits }).toEqual({ value: 'ok', calls: 3, waits: [1, 2] })
  })

  it('throws any other error at once, and stops waiting when told', async () => {
    let calls = 0
    const bad = new InvalidRecordError('malformed')
    await expect(whileUnavailable(async () => { calls++; throw bad })).rejects.toBe(bad)
    expect(calls).toBe(1)
    const stop = new AbortController()
    const waiting = whileUnavailable(async () => { throw new BackendUnavailableError('no answer') }, { signal: stop.signal, onRetry: () => { stop.abort() } })
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('throws the failure after which the next try would start too late', async () => {
    let calls = 0
    const late = whileUnavailable(async () => { calls++; throw new BackendUnavailableError(`no answer ${calls}`) }, { lastTryBy: Date.now() + 2500 })
    // Tries at 0 s and 1 s; the next would start at 3 s.
    await expect(late).rejects.toThrow('no answer 2')
    expect(calls).toBe(2)
  })
})
