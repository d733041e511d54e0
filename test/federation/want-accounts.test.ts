import { expect, it, vi } from 'vitest'
import type { MemberBuses } from '../../src/transport/members.ts'
import { memberOfTwo, namedRoom, tempDir } from './helpers.ts'

// A copy answers each of the federation's own accounts its own share of wants (gaps.ts). A member
// of a federation started in a lobby gave its copy every lobby agent's account as the federation's,
// members or not, so lobby agents outside the roster had members' shares.
const { given } = vi.hoisted(() => ({ given: [] as Array<readonly string[] | undefined> }))
vi.mock('../../src/ledger/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/ledger/index.ts')>()
  return { ...real, createLedger: async (...args: Parameters<typeof real.createLedger>) => { given.push(args[1].accounts); return await real.createLedger(...args) } }
})

it('a member\'s copy counts as the federation\'s accounts its members\' only, where the bus knows whose is whose', async () => {
  const { runMember } = await import('../../src/federation/member.ts')
  const config = await memberOfTwo(await tempDir(), 1, { federation: 'want-accounts', ledger: { kind: 'replica', difficulty: 4 } })
  // A lobby of three agents; the federation's roster is the first and the third.
  const lobby = ['@lab.agent-1:lab', '@lab.agent-2:lab', '@lab.agent-3:lab']
  const buses: MemberBuses = { of: () => namedRoom().as('@lab.agent-1:lab'), accounts: lobby, byMember: ['@lab.agent-1:lab', '@lab.agent-3:lab'], settled: async () => {}, close: async () => {} }
  await expect(runMember(config, { buses })).rejects.toMatchObject({ name: 'BackendUnavailableError' })
  expect(given).toEqual([['@lab.agent-1:lab', '@lab.agent-3:lab']])
}, 60_000)
