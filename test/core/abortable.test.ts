import { getEventListeners } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { withDeadline } from '../../src/core/abortable.ts'
import { DeadlineError } from '../../src/core/errors.ts'

describe('withDeadline', () => {
  afterEach(() => { vi.useRealTimers() })

  it('leaves no timer and no listener on the caller\'s signal once the call settles (each model call\'s bound outlived it: +4.5 MiB a round in bench:memory)', async () => {
    vi.useFakeTimers()
    const turn = new AbortController()
    expect(await withDeadline(300_000, turn.signal, async () => 'answer')).toBe('answer')
    await expect(withDeadline(300_000, turn.signal, async () => { throw new Error('refused') })).rejects.toThrow('refused')
    expect(vi.getTimerCount()).toBe(0)
    expect(getEventListeners(turn.signal, 'abort')).toHaveLength(0)
  })

  it('gives up on a call that never settles and heeds no signal, with a DeadlineError, and at once when the caller aborts', async () => {
    vi.useFakeTimers()
    const deaf = async (): Promise<never> => new Promise<never>(() => {})
    const late = withDeadline(50, undefined, deaf)
    const caught = late.catch((err: unknown) => err)
    await vi.advanceTimersByTimeAsync(50)
    expect(await caught).toBeInstanceOf(DeadlineError)
    const turn = new AbortController()
    const killed = withDeadline(300_000, turn.signal, deaf).catch((err: unknown) => err)
    turn.abort(new Error('killed'))
    expect(await killed).toMatchObject({ message: 'killed' })
    expect(vi.getTimerCount()).toBe(0)
    await expect(withDeadline(50, turn.signal, deaf)).rejects.toThrow('killed')
  })
})
