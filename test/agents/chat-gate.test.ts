import { describe, expect, it } from 'vitest'
import { ChatGate } from '../../src/federation/chat-gate.ts'

// The clock is a number the test moves: no test here waits on time.
describe('the door between a room and an agent', () => {
  const rules = { steer: new Set(['@alice:lab', '@carol:lab']), limit: { messages: 3, seconds: 60, others: 100 } }

  it('obeys commands that act only from those who may steer; a stranger is refused once per window, then ignored', () => {
    let now = 0
    const gate = new ChatGate(rules, () => now)
    expect(gate.admit('@alice:lab', 'pause')).toBe('answer')
    expect(gate.admit('@carol:lab', 'resume')).toBe('answer')
    expect(['pause', 'propose', 'resume', 'pause'].map(c => gate.admit('@mallory:lab', c))).toEqual(['refuse', 'ignore', 'ignore', 'ignore'])
    now = 60_000
    expect(gate.admit('@mallory:lab', 'pause')).toBe('refuse')
    // Starting a federation is a command that acts, too.
    expect(gate.admit('@eve:lab', 'federate')).toBe('refuse')
    expect(gate.admit('@alice:lab', 'federate')).toBe('answer')
  })

  it('answers a stranger\'s questions and read-only commands, up to the limit per window', () => {
    let now = 0
    const gate = new ChatGate(rules, () => now)
    expect(gate.admit('@bob:lab', 'status')).toBe('answer')
    expect(gate.admit('@bob:lab', undefined)).toBe('answer')
    expect(gate.admit('@bob:lab', 'tools')).toBe('answer')
  })

  it('a flood gets `messages` answers and one note to wait, then silence until the window has room; another sender is not held back', () => {
    let now = 0
    const gate = new ChatGate(rules, () => now)
    const flood = Array.from({ length: 20 }, (_, i) => { now = i * 100; return gate.admit('@mallory:lab', undefined) })
    expect(flood).toEqual(['answer', 'answer', 'answer', 'wait', ...Array(16).fill('ignore')])
    expect(gate.admit('@alice:lab', undefined)).toBe('answer')
    now = 60_000 // the first answer (at 0) has left the window
    expect(gate.admit('@mallory:lab', undefined)).toBe('answer')
    expect(gate.admit('@mallory:lab', undefined)).toBe('ignore') // the answers at 100 and 200 are still in it; the note at 300 too
  })

  // Found red-teaming: the limit was per sender only, so 100 accounts sending 6 messages each
  // to three agents got 1,800 answers, all started at once.
  it('answers everyone but the researchers `others` times per window in all: many accounts get no more than that, one note says so, and the researchers are still answered', () => {
    let now = 0
    const gate = new ChatGate({ ...rules, limit: { messages: 3, seconds: 60, others: 5 } }, () => now)
    const flood = Array.from({ length: 40 }, (_, i) => gate.admit(`@sock-${i % 20}:lab`, undefined))
    expect(flood.filter(a => a === 'answer')).toHaveLength(5)
    expect(flood.filter(a => a === 'busy')).toHaveLength(1)
    expect(gate.note('busy', undefined, '')).toMatch(/^I have answered 5 messages within 60 s, as many as I answer then to anyone but this federation's researchers/)
    expect([gate.admit('@alice:lab', undefined), gate.admit('@alice:lab', 'pause'), gate.admit('@carol:lab', undefined)]).toEqual(['answer', 'answer', 'answer'])
    now = 60_000 // the window has room again
    expect(gate.admit('@sock-30:lab', undefined)).toBe('answer')
  })

  // Found red-teaming: refusals were per sender only, so 5,000 accounts each sending !pause got 5,000 notes.
  it('a note to anyone but the researchers is one of the window\'s answers to them: many accounts\' refused commands get `others` notes in all, then one note that says so', () => {
    const gate = new ChatGate({ ...rules, limit: { messages: 3, seconds: 60, others: 5 } }, () => 0)
    const refused = Array.from({ length: 5000 }, (_, i) => gate.admit(`@sock-${i}:lab`, 'pause'))
    expect(refused.filter(a => a === 'refuse')).toHaveLength(5)
    expect(refused.filter(a => a === 'busy')).toHaveLength(1)
    expect(gate.admit('@alice:lab', 'pause')).toBe('answer')
  })

  it('the researchers are rate-limited like anyone: the limit is on model calls, not on trust', () => {
    const gate = new ChatGate(rules, () => 0)
    expect([1, 2, 3, 4].map(() => gate.admit('@alice:lab', undefined))).toEqual(['answer', 'answer', 'answer', 'wait'])
  })
})

describe('the door\'s notes', () => {
  it('a refusal does not use up the note to wait, nor the other way round', () => {
    let now = 0
    const gate = new ChatGate({ steer: new Set(), limit: { messages: 1, seconds: 60, others: 100 } }, () => now++)
    expect(['pause', undefined, undefined, 'pause', undefined].map(c => gate.admit('@mallory:lab', c))).toEqual(['refuse', 'answer', 'wait', 'ignore', 'ignore'])
  })
})
