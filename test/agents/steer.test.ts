import { afterEach, describe, expect, it, vi } from 'vitest'
import { agentDriver, type ParticipantAgent } from '../../agents/index.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'

// On Matrix every member talks as its own account (createMemberBuses); here the in-process
// bus carries them, its `from` standing for the sender the homeserver vouches for.
const ACCOUNTS = ['@fed.agent-1:lab', '@fed.agent-2:lab', '@fed.agent-3:lab']
vi.mock('../../src/transport/members.ts', async (original) => {
  const real = await original<typeof import('../../src/transport/members.ts')>()
  return {
    ...real,
    createMemberBuses: async (...args: Parameters<typeof real.createMemberBuses>) => ({ ...await real.createMemberBuses(...args), accounts: ACCOUNTS, byMember: ACCOUNTS })
  }
})

// Found red-teaming: every member's account could steer the others, so one hostile member
// paused the honest agents (they then neither propose nor vote) or resumed one a researcher paused.
describe('who may steer the agents of a federation whose members have accounts of their own', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('a member\'s account is refused as a stranger is, and pauses nobody; the researcher pauses every agent', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, researchers: ['@alice:lab'] }), { dir: await tempDir(), driver: agentDriver() })
    await sim.charter()
    const replies: Array<{ from: string, body: string, inReplyTo?: string }> = []
    await sim.bus.subscribe(sim.config.federation, m => { if (m.kind === 'chat' && m.from.startsWith('agent-')) replies.push(m) })
    const agents = [0, 1, 2].map(i => sim?.drivers[i] as ParticipantAgent)
    const say = async (from: string, body: string, id: string): Promise<void> => { await sim?.bus.publish(sim.config.federation, { kind: 'chat', from, body, id }) }

    await say('@fed.agent-3:lab', '@agent-1 @agent-2 !pause', 'hostile')
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'hostile').length, { timeout: 60_000 }).toBe(2)
    expect(replies.filter(r => r.inReplyTo === 'hostile').map(r => r.body).sort()).toEqual(['agent-1', 'agent-2'].map(name =>
      expect.stringMatching(new RegExp(`^${name}: sorry, I take !pause only from this federation's researchers`))))
    expect(agents.map(a => a.paused)).toEqual([false, false, false])

    await say('@alice:lab', '!pause', 'researcher')
    await expect.poll(() => agents.every(a => a.paused), { timeout: 60_000 }).toBe(true)
    // Nor may a member resume an agent the researcher paused (another member's account: agent-3's got its one refusal of the window).
    await say('@fed.agent-2:lab', '@agent-1 !resume', 'resume')
    await expect.poll(() => replies.filter(r => r.inReplyTo === 'resume').length, { timeout: 60_000 }).toBe(1)
    expect(agents.map(a => a.paused)).toEqual([true, true, true])
  })
})
