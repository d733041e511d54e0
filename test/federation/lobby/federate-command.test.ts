import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BadCommandError } from '../../../src/core/errors.ts'
import { parseFederate } from '../../../src/federation/lobby/federate-command.ts'

/** The error a bad command gets, as a plain value. */
function refusal (args: string): { name: string, code: string, message: string } | 'parsed' {
  try {
    parseFederate(args)
    return 'parsed'
  } catch (err) {
    return { name: (err as Error).name, code: (err as BadCommandError).code, message: (err as Error).message }
  }
}

describe('!federate as a researcher types it', () => {
  it('reads task and rounds, the optional seed, quorum, committee and wait, in any order', () => {
    expect(parseFederate('task=classify rounds=2')).toEqual({ task: 'classify', rounds: 2, wait: 30 })
    expect(parseFederate('  rounds=3   seed=7 quorum=majority task=ner committee=2 wait=5 ')).toEqual({ task: 'ner', rounds: 3, seed: 7, quorum: { kind: 'majority' }, committee: 2, wait: 5 })
    expect(parseFederate('task=qa rounds=1 quorum=0.5').quorum).toEqual({ kind: 'fraction', fraction: 0.5 })
    expect(parseFederate('task=qa rounds=1 quorum=2').quorum).toEqual({ kind: 'count', count: 2 })
  })

  it('names every problem in one reply: missing, unknown, repeated, malformed and out-of-bounds settings', () => {
    const bad = (args: string): string => {
      const r = refusal(args)
      if (r === 'parsed') throw new Error(`${args} parsed`)
      expect({ name: r.name, code: r.code }).toEqual({ name: 'BadCommandError', code: 'ERR_BAD_COMMAND' })
      return r.message
    }
    expect(bad('')).toMatch(/^task: missing; rounds: missing\. Usage: !federate/)
    expect(bad('task=classify rounds=2 colour=blue')).toMatch(/^unknown setting colour \(settings: task, rounds, seed, quorum, committee, wait\)/)
    expect(bad('task=classify rounds=2 rounds=3')).toMatch(/^rounds is given twice/)
    expect(bad('task=classify rounds two')).toMatch(/^"rounds" is not key=value; "two" is not key=value; rounds: missing\./)
    expect(bad('task=vision rounds=0')).toMatch(/^task: expected classify, ner or qa; rounds: at least 1/)
    expect(bad('task=classify rounds=2 seed=-1 quorum=most')).toMatch(/seed: expected a whole number; quorum: expected a count/)
    expect(bad('task=classify rounds=1e3')).toMatch(/rounds: expected a whole number/)
  })

  it('refuses __proto__, constructor and toString as unknown settings, like any other, and names them', () => {
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const r = refusal(`task=classify rounds=2 ${key}=x`)
      expect(r === 'parsed' ? r : r.message).toMatch(new RegExp(`^unknown setting ${key} \\(settings: `))
    }
    expect(refusal('task=classify rounds=2 __proto__=x __proto__=y')).toMatchObject({ message: expect.stringMatching(/^__proto__ is given twice; unknown setting __proto__ /) })
  })

  it('never throws anything but a BadCommandError, whatever the room sends (fuzzed)', () => {
    const word = fc.oneof(
      fc.string(),
      fc.tuple(fc.constantFrom('task', 'rounds', 'seed', 'quorum', 'committee', 'wait', '__proto__', 'constructor', ''), fc.oneof(fc.string(), fc.integer().map(String), fc.constantFrom('classify', 'majority', '0.5', '=')))
        .map(([k, v]) => `${k}=${v}`)
    )
    fc.assert(fc.property(fc.array(word, { maxLength: 8 }).map(ws => ws.join(' ')), args => {
      const r = refusal(args)
      if (r !== 'parsed') expect(r.name).toBe('BadCommandError')
    }), { numRuns: 2000, seed: 19 })
  })
})
