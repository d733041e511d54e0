import { createHash } from 'node:crypto'
import { cp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { beforeAll, describe, expect, it } from 'vitest'
import { agentDriver } from '../../agents/index.ts'
import { chatCommand } from '../../src/cli/chat.ts'
import type { Checkpoint, Decision, Did, Vote } from '../../src/core/records.ts'
import { RunReport } from '../../src/federation/report.ts'
import { runFederation, writeRunConfig } from '../../src/federation/run.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { openLedgerDir } from '../../src/ledger/index.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'

/** What the ledger of a run says, read straight from its blocks: the facts answers are checked against. */
interface Facts {
  name: (did: Did) => string
  proposals: Map<string, { issuer: Did, round: number }>
  votes: Array<Vote & { issuer: Did }>
  decisions: Map<string, Decision>
  checkpoints: Map<number, Checkpoint>
  members: Did[]
}

async function ledgerFacts (dir: string): Promise<Facts> {
  const ledger = await openLedgerDir(join(dir, 'ledger'))
  const facts: Facts = { name: () => '', proposals: new Map(), votes: [], decisions: new Map(), checkpoints: new Map(), members: [] }
  try {
    for await (const block of ledger.blocks()) {
      const { issuer, record } = peekRecord(block.record)
      if (record === null || issuer === null) continue
      if (record.type === 'charter') facts.members = record.members
      if (record.type === 'proposal') facts.proposals.set(block.id, { issuer, round: record.round })
      if (record.type === 'vote') facts.votes.push({ ...record, issuer })
      if (record.type === 'decision') facts.decisions.set(record.proposal, record)
      if (record.type === 'checkpoint') facts.checkpoints.set(record.round, record)
    }
  } finally {
    await ledger.close()
  }
  facts.name = did => `agent-${facts.members.indexOf(did) + 1}`
  return facts
}

/** Every file under `dir` with its sha-256: what "nothing was written" is checked against. */
async function snapshot (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    out[path] = createHash('sha256').update(await readFile(path)).digest('hex')
  }
  return out
}

/** `conclave chat DIR …` with these lines typed in; what it printed. */
async function converse (args: string[], lines: string[]): Promise<{ code: number, out: string }> {
  const output = new PassThrough()
  let out = ''
  output.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  const code = await chatCommand(args, { input: Readable.from([lines.join('\n') + '\n']), output, terminal: false })
  return { code, out }
}

describe('conclave chat DIR: talking to the agents of a finished run', () => {
  let dir: string
  let facts: Facts
  let report: RunReport
  beforeAll(async () => {
    dir = join(await tempDir('conclave-chat-'), 'run')
    // agent-3 flips the sign of its updates, so the record holds rejections too.
    await runFederation(smallConfig({ rounds: 2, attacks: [{ kind: 'sign-flip', agent: 3, scale: 5 }] }), { out: dir, driver: agentDriver() })
    facts = await ledgerFacts(dir)
    report = RunReport.parse(JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')))
  }, 300_000)

  it('answers five questions, each as the ledger has it, and writes nothing into the run directory', async () => {
    const before = await snapshot(dir)
    const { code, out } = await converse([dir], [
      "why did you reject agent-3's update in round 1?",
      'how is the accuracy trending?',
      'who has the best reputation?',
      'what did round 2 merge?',
      'which tools do you have?',
      '/quit'
    ])
    expect(code).toBe(0)
    const answers = out.split('\n').filter(l => l.startsWith('agent-1: '))
    expect(answers).toHaveLength(5)
    const [why, trend, best, merged, tools] = answers as [string, string, string, string, string]
    const me = facts.members[0] as Did

    // 1. Why a vote: agent-1's signed vote on agent-3's round 1 proposal, and its decision.
    const [hostile] = [...facts.proposals].find(([, p]) => p.round === 1 && facts.name(p.issuer) === 'agent-3') ?? []
    const vote = facts.votes.find(v => v.issuer === me && v.proposal === hostile)
    const decision = facts.decisions.get(hostile as string)
    expect(vote?.accept).toBe(false)
    expect(why).toContain(`I voted to reject agent-3's round 1 update (${hostile?.slice(0, 12)})`)
    expect(why).toContain(`"${vote?.rationale}"`)
    expect(why).toContain(`The federation ${decision?.accepted === true ? 'accepted' : 'rejected'} it (${decision?.accepts} accepts, ${decision?.rejects} rejects; ${decision?.required} needed)`)

    // 2. The trend: agent-1's votes of round r measured the global model of round r − 1 ("before → after").
    for (const round of [1, 2]) {
      const measured = facts.votes.find(v => v.issuer === me && v.round === round)?.rationale.match(/validation examples: (-?\d+\.\d{4}) → /)?.[1]
      expect(measured).toBeDefined()
      expect(trend).toContain(`round ${round - 1}${round === 1 ? ' (charter)' : ''} ${measured}`)
    }
    expect(trend).toMatch(/round 2 -?\d+\.\d{4}; (up|down) \d+\.\d{4} since the charter\.$/)

    // 3. The best reputation: proposals accepted and rejected (decisions), votes cast, per member.
    const standing = facts.members.map(did => ({
      member: facts.name(did),
      accepted: [...facts.decisions.values()].filter(d => d.proposer === did && d.accepted).length,
      rejected: [...facts.decisions.values()].filter(d => d.proposer === did && !d.accepted).length,
      votes: facts.votes.filter(v => v.issuer === did).length
    })).sort((a, b) => b.accepted - a.accepted || a.rejected - b.rejected || b.votes - a.votes || a.member.localeCompare(b.member))
    const top = standing[0] as typeof standing[0]
    const tied = standing.filter(s => s.accepted === top.accepted && s.rejected === top.rejected && s.votes === top.votes).map(s => s.member)
    expect(tied).not.toContain('agent-3')
    expect(best).toContain(tied.length === 1 ? `${top.member} has the best reputation` : `${tied.join(' and ')} share the best reputation`)
    expect(best).toContain(`${top.accepted} proposals accepted, ${top.rejected} rejected, ${top.votes} votes cast`)

    // 4. What round 2 merged: its checkpoint.
    const checkpoint = facts.checkpoints.get(2) as Checkpoint
    expect(merged).toContain(`Round 2 merged ${checkpoint.merged.length} update${checkpoint.merged.length === 1 ? '' : 's'} into the global model ${checkpoint.model.sha256.slice(0, 12)}`)
    for (const id of checkpoint.merged) expect(merged).toContain(`${facts.name(facts.proposals.get(id)?.issuer as Did)}'s (${id.slice(0, 12)})`)
    expect(merged).toMatch(/Rejected: agent-3's \(/)

    // 5. Which tools: the agent's tools, and its calls as the run's report counted them.
    const calls = report.agents[0]?.toolCalls ?? {}
    expect(Object.keys(calls).length).toBeGreaterThan(0)
    for (const [tool, n] of Object.entries(calls)) expect(tools).toContain(`${tool} ${n}×`)
    expect(tools).toMatch(/^agent-1: My tools: distill, train, publish, anchor, evaluate, vote/)

    expect(await snapshot(dir)).toEqual(before)
  })

  it('/agent switches agents, @agent-N asks another once (the first named of several), an unknown agent is told the members, /help helps', async () => {
    const { out } = await converse([dir, '--agent', 'agent-2'], ['!status', '/agent agent-3', 'what did round 1 merge?', '@agent-1 !status', '@agent-9 hello?', '/agent agent-7', '/help', '/bogus', '/agent agent-2', '@agent-3 @agent-1 !status'])
    const lines = out.split('\n')
    expect(lines).toContainEqual(expect.stringMatching(/^agent-2: The run has ended: all 2 planned rounds are merged/))
    expect(lines).toContain('Now talking to agent-3.')
    expect(lines).toContainEqual(expect.stringMatching(/^agent-3: Round 1 merged 2 updates/))
    expect(lines).toContainEqual(expect.stringMatching(/^agent-1: The run has ended/))
    expect(lines).toContain('There is no agent-9 in this federation. Its members are agent-1, agent-2, agent-3: ask one with @agent-1, or send a !command to all.')
    expect(lines).toContain('There is no agent-7; the members are agent-1, agent-2, agent-3.')
    expect(out).toContain('/agent NAME    talk to another agent from now on')
    expect(lines).toContain('Unknown command /bogus; /help lists them.')
    // Two mentions: the first named answers, as mentions are read in the room (src/federation/mentions.ts).
    expect(lines).toContainEqual(expect.stringMatching(/^agent-3: The run has ended/))
  })

  it('refuses what is not a run directory, and an agent the run does not have', async () => {
    await expect(chatCommand([await tempDir()], { input: Readable.from([]), output: new PassThrough() })).rejects.toMatchObject({ name: 'ConfigError' })
    await expect(chatCommand([dir, '--agent', 'agent-9'], { input: Readable.from([]), output: new PassThrough() })).rejects.toMatchObject({ name: 'ConfigError' })
  })

  // Found red-teaming: config.json was checked with stat (which follows links), then read whole.
  it('refuses a config.json that is a link, and does not read it', async () => {
    const copy = join(await tempDir('conclave-chat-link-'), 'run')
    await cp(dir, copy, { recursive: true })
    const elsewhere = join(await tempDir('conclave-chat-link-'), 'big.json')
    await writeFile(elsewhere, Buffer.alloc(2 * 1024 * 1024, 0x20))
    await rm(join(copy, 'config.json'))
    await symlink(elsewhere, join(copy, 'config.json'))
    await expect(chatCommand([copy], { input: Readable.from([]), output: new PassThrough() })).rejects.toMatchObject({ name: 'StrayFileError' })
  })
})

describe('conclave chat DIR: a run still going', () => {
  it('answers from the ledger as it stands on disk: the run moves on between two questions, and so do the answers', async () => {
    const dir = await tempDir('conclave-chat-live-')
    const config = smallConfig({ rounds: 2 })
    await writeRunConfig(dir, config)
    const sim = await Simulation.create(config, { dir, driver: agentDriver() })
    const input = new PassThrough()
    const output = new PassThrough()
    let out = ''
    output.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
    const answers = (): string[] => out.split('\n').filter(l => l.startsWith('agent-2: '))
    try {
      await sim.charter()
      await sim.round(1)
      const session = chatCommand([dir, '--agent', 'agent-2'], { input, output, terminal: false })
      input.write('status?\n')
      await expect.poll(answers, { timeout: 120_000 }).toHaveLength(1)
      expect(answers()[0]).toMatch(/^agent-2: Round 2 is open \(of 2 planned\); 1 round merged so far/)
      await sim.round(2)
      input.write('status?\n')
      await expect.poll(answers, { timeout: 120_000 }).toHaveLength(2)
      expect(answers()[1]).toMatch(/^agent-2: The run has ended: all 2 planned rounds are merged and the global model is /)
      expect(answers()[1]).toContain(sim.participants[1]?.globalModel?.ref.sha256.slice(0, 12))
      input.end()
      expect(await session).toBe(0)
    } finally {
      await sim.close()
    }
  })
})

describe('conclave chat DIR on a run that learned from teachers', () => {
  it('tells each agent\'s teacher spend as the run reported it, not that it had no teacher', async () => {
    const dir = join(await tempDir('conclave-chat-qa-'), 'run')
    const qa = { kind: 'qa', trainLimit: 300, testLimit: 40, features: 4096, hidden: 32, maxWords: 300 } as const
    await runFederation(smallConfig({ rounds: 1, task: qa, teacher: { kind: 'dataset', budgetTokens: 100_000 } }), { out: dir })
    const report = RunReport.parse(JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')))
    const spent = report.agents[1]?.teacher
    expect(spent?.tokens).toBeGreaterThan(0)
    const { code, out } = await converse([dir, '--agent', 'agent-2'], ['how much did your teacher cost?', '/quit'])
    expect(code).toBe(0)
    const [answer] = out.split('\n').filter(l => l.startsWith('agent-2: '))
    expect(answer).toContain(`My teacher answered ${spent?.asked} questions (${spent?.cached} more from the cache) for ${spent?.tokens} tokens`)
    expect(answer).toContain(`budget left: ${100_000 - (spent?.tokens ?? 0)} tokens`)
  }, 300_000)
})
