import { expect, it } from 'vitest'
import { runMember } from '../../src/federation/member.ts'
import type { MemberBuses } from '../../src/transport/members.ts'
import { memberOfTwo, namedRoom, tempDir } from './helpers.ts'

// Hellos are not signed: on Matrix anyone in the room could say one for a member, and the founder
// then chartered before that member listened, or had made its ledger copy, which then refuses a
// charter from before it was made (copy-made.ts) and could never join. The room vouches for who
// sent a hello: only a member's own account may say that member listens.
it('the founder counts a member as listening only on a hello from that member\'s own account', async () => {
  const config = await memberOfTwo(await tempDir(), 1, { federation: 'hello-from', joinSeconds: 2 })
  const other = config.members[1] as string
  const shared = namedRoom()
  const buses: MemberBuses = { of: () => shared.as('@agent-1:lab'), accounts: ['@agent-1:lab', '@agent-2:lab'], byMember: ['@agent-1:lab', '@agent-2:lab'], settled: async () => {}, close: async () => {} }
  const stop = new AbortController()
  const stopping = setTimeout(() => { stop.abort() }, 8000)
  const running = runMember(config, { buses, signal: stop.signal })
  // Another account in the room says agent-2 listens, again and again.
  const mallory = shared.as('@mallory:lab')
  const saying = setInterval(() => { void mallory.publish('r', { kind: 'hello', did: other, name: 'agent-2' }) }, 200)
  try {
    await expect(running).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('agent-2 missing') })
  } finally {
    clearInterval(saying)
    clearTimeout(stopping)
  }
  expect(shared.sent.filter(s => s.from === '@agent-1:lab').map(s => s.message.kind)).toEqual(expect.arrayContaining(['hello']))
  expect(shared.sent.filter(s => s.from === '@agent-1:lab' && s.message.kind !== 'hello')).toEqual([])
}, 60_000)
