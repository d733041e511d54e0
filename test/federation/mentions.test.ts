import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { leadingMentions, mentions } from '../../src/federation/mentions.ts'

describe('who a chat message addresses', () => {
  it('reads every leading mention, however separated, and the text after them', () => {
    expect(leadingMentions('@agent-2 @agent-3: !status')).toEqual({ names: ['agent-2', 'agent-3'], text: '!status' })
    expect(leadingMentions('  @agent-2, @agent-3,!status')).toEqual({ names: ['agent-2', 'agent-3'], text: '!status' })
    expect(leadingMentions('@agent-2: why did you reject agent-3?')).toEqual({ names: ['agent-2'], text: 'why did you reject agent-3?' })
    expect(leadingMentions('@agent-2')).toEqual({ names: ['agent-2'], text: '' })
    // A Matrix id names its localpart, with or without a port.
    expect(leadingMentions('@alice:lab.org: lunch?')).toEqual({ names: ['alice'], text: 'lunch?' })
    expect(leadingMentions('@agent-2:localhost:8008 @agent-3:why?')).toEqual({ names: ['agent-2', 'agent-3'], text: 'why?' })
    // Not leading: no address, the text unchanged.
    expect(leadingMentions('!status @agent-2')).toEqual({ names: [], text: '!status @agent-2' })
    expect(leadingMentions('mail a@b.org')).toEqual({ names: [], text: 'mail a@b.org' })
  })

  it('finds mentions anywhere, and not inside an e-mail address', () => {
    expect(mentions('hey @agent-2, ask @alice:lab.org and (@agent-3),@agent-4')).toEqual(['agent-2', 'alice', 'agent-3', 'agent-4'])
    expect(mentions('mail a@b.org')).toEqual([])
  })

  it('agrees with itself: every leading mention is a mention, and what follows them starts with none', () => {
    const name = fc.stringMatching(/^[A-Za-z][\w-]{0,8}$/)
    const sep = fc.constantFrom(' ', ': ', ', ', ',', '\t', '  ')
    fc.assert(fc.property(fc.array(fc.tuple(name, sep), { maxLength: 4 }), fc.string({ maxLength: 30 }), (lead, rest) => {
      const body = lead.map(([n, s]) => `@${n}${s}`).join('') + rest
      const { names, text } = leadingMentions(body)
      expect(names.slice(0, lead.length)).toEqual(lead.map(([n]) => n))
      expect(leadingMentions(text).names).toEqual([])
      for (const n of names) expect(mentions(body)).toContain(n)
    }), { numRuns: 2000, seed: 5 })
  })
})
