import { describe, expect, it } from 'vitest'
import { assertReachable, parseQuorum, requiredAccepts } from '../../src/core/quorum.ts'
import { ConclaveError, ConfigError, ContentMismatchError } from '../../src/core/errors.ts'

describe('quorum rule', () => {
  it.each([
    [{ kind: 'count', count: 4 } as const, 5, 4],
    [{ kind: 'fraction', fraction: 1 } as const, 5, 4],
    [{ kind: 'fraction', fraction: 0.75 } as const, 5, 3],
    [{ kind: 'fraction', fraction: 0.8 } as const, 5, 4],
    [{ kind: 'fraction', fraction: 0.01 } as const, 5, 1],
    [{ kind: 'majority' } as const, 5, 3],
    [{ kind: 'majority' } as const, 4, 2]
  ])('%j with %i members needs %i accepts', (rule, members, required) => {
    expect(requiredAccepts(rule, members)).toBe(required)
  })

  it.each([
    [{ kind: 'fraction', fraction: 0.5 } as const, 5, 3],
    [{ kind: 'fraction', fraction: 0.5 } as const, 7, 4],
    [{ kind: 'fraction', fraction: 1 } as const, 5, 5],
    [{ kind: 'majority' } as const, 5, 3],
    [{ kind: 'majority' } as const, 4, 3],
    [{ kind: 'count', count: 2 } as const, 5, 2]
  ])('%j within a committee of %i needs %i accepts, whatever the federation\'s size', (rule, committee, required) => {
    expect(requiredAccepts(rule, 100, committee)).toBe(required)
  })

  it('refuses a committee larger than the proposer\'s peers, or a quorum beyond it', () => {
    expect(() => assertReachable({ kind: 'majority' }, 5, 5)).toThrow(ConfigError)
    expect(() => assertReachable({ kind: 'count', count: 4 }, 20, 3)).toThrow(ConfigError)
    expect(() => assertReachable({ kind: 'count', count: 3 }, 20, 3)).not.toThrow()
    expect(() => assertReachable({ kind: 'majority' }, 5, 4)).not.toThrow()
  })

  it('refuses a quorum no federation of that size can reach', () => {
    expect(() => assertReachable({ kind: 'count', count: 5 }, 5)).toThrow(ConfigError)
    expect(() => assertReachable({ kind: 'count', count: 4 }, 5)).not.toThrow()
  })

  it('parses CLI shorthand and refuses nonsense with ConfigError', () => {
    expect(parseQuorum('4')).toEqual({ kind: 'count', count: 4 })
    expect(parseQuorum('0.75')).toEqual({ kind: 'fraction', fraction: 0.75 })
    expect(parseQuorum('1')).toEqual({ kind: 'count', count: 1 })
    expect(parseQuorum('majority')).toEqual({ kind: 'majority' })
    for (const bad of ['', 'most', '-1', '1.5', '0']) expect(() => parseQuorum(bad)).toThrow(ConclaveError)
  })
})

describe('errors', () => {
  it('derive name and code from the class', () => {
    const err = new ContentMismatchError('x')
    expect(err).toBeInstanceOf(ConclaveError)
    expect({ name: err.name, code: err.code }).toEqual({ name: 'ContentMismatchError', code: 'ERR_CONTENT_MISMATCH' })
  })
})
