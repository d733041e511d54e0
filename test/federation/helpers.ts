import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import type { Charter, Vote } from '../../src/core/records.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { charterOf } from '../../src/federation/enrol.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { parseMemberConfig, type MemberConfig } from '../../src/federation/member.ts'
import { createIdentity, loadOrCreateKeystore, peekRecord, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Bus, BusHandler, BusMessage } from '../../src/transport/index.ts'

/** Audits a simulation's ledger and store: every record passes, no vote refused. */
export async function expectAuditClean (sim: Simulation): Promise<void> {
  const result = await audit(sim.ledger, sim.store)
  expect(result.ok).toBe(true)
  expect(result.rejected).toEqual([])
}

/** The votes a simulation's ledger holds, in ledger order, with who signed each. */
export async function votesIn (sim: Simulation): Promise<Array<{ issuer: string | null, vote: Vote }>> {
  const votes: Array<{ issuer: string | null, vote: Vote }> = []
  for await (const block of sim.ledger.blocks()) {
    const { issuer, record } = peekRecord(block.record)
    if (record?.type === 'vote') votes.push({ issuer, vote: record })
  }
  return votes
}

/** A federation small enough for tests: few agents, a slice of OHSUMED, few rounds. */
export function smallConfig (overrides: RunConfigInput = {}): RunConfig {
  return parseRunConfig({
    agents: 3,
    rounds: 2,
    seed: 7,
    quorum: 'majority',
    ledger: { kind: 'tangle', difficulty: 4 },
    task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048 },
    ...overrides
  })
}

/** A bring-your-own classification dataset (`--data`) a federation learns in a second: three labels with telling words. */
export async function tinyDataset (): Promise<string> {
  const data = await tempDir('conclave-byod-')
  const rows = (n: number, offset: number): string => Array.from({ length: n }, (_, i) => {
    const label = (i + offset) % 3
    const words = [['fever cough influenza virus'], ['fracture bone cast orthopedic'], ['rash skin itch dermatitis']][label]
    return JSON.stringify({ text: `${words} patient case ${i}`, label: ['flu', 'bone', 'skin'][label] })
  }).join('\n') + '\n'
  await writeFile(join(data, 'train.jsonl'), rows(90, 0))
  await writeFile(join(data, 'test.jsonl'), rows(30, 1))
  return data
}

/** Directories this test file made, removed once its tests are done (a run of the suite made ~25,000). */
const made: string[] = []
afterAll(async () => { await Promise.all(made.splice(0).map(async dir => rm(dir, { recursive: true, force: true }))) })

export async function tempDir (prefix = 'conclave-run-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

/** Signs, anchors and announces a record as `who`, like any peer could, and waits until every participant handled it. */
export async function inject (sim: Simulation, who: Identity, record: Parameters<Identity['sign']>[0]): Promise<string> {
  const jwt = await who.sign(record, { now: sim.now() })
  const block = await sim.ledger.append(jwt)
  await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
  await sim.settle()
  return block.id
}

/** The errors by which the participants refused `block`, one per participant that did. */
export function errorsFor (sim: Simulation, block: string): string[] {
  return sim.participants.flatMap(q => (sim.rejections.get(q.name) ?? []).filter(r => r.block === block).map(r => r.error.name))
}

/** A driver that proposes when its round opens and nothing more: the test casts every vote itself. */
export const byHand: DriverFactory = async participant => ({ openRound: async round => { await participant.propose(round) }, busy: false, idle: async () => {}, close: async () => {} })

/** A small federation driven by hand, its charter (as `edit` leaves it) anchored by agent-1. */
export async function chartered (overrides: RunConfigInput = {}, edit: (charter: Charter) => Charter = c => c): Promise<Simulation> {
  const sim = await Simulation.create(smallConfig(overrides), { dir: await tempDir(), driver: byHand })
  const founder = sim.participants[0] as Participant
  await founder.publishRecord(edit(await charterOf(sim.config, sim.task, sim.store, sim.participants.map(q => q.did))))
  await sim.settle()
  return sim
}

/** The participant that records `round`, as the first participant's state has it. */
export function recorderOf (sim: Simulation, round: number): Participant {
  const [first] = sim.participants as [Participant]
  return sim.participants.find(q => q.did === first.state.recorder(round)) as Participant
}

/** Every judge of every proposal of `round` votes as it measured, and the votes are handled. */
export async function judged (sim: Simulation, round: number): Promise<void> {
  for (const q of sim.participants) {
    for (const id of q.state.rounds.get(round)?.proposals ?? []) if (q.state.judges(id).includes(q.did)) await q.vote(id, (await q.evaluate(id)).passes)
  }
  await sim.settle()
}

/** The vote `voter` would cast on `proposal` as it measured it, not cast. */
export async function measuredVote (sim: Simulation, voter: Participant, proposal: string, rationale: string): Promise<Vote> {
  const evaluation = await voter.evaluate(proposal)
  await sim.settle()
  const round = voter.state.proposals.get(proposal)?.signed.record.round ?? 0
  return { type: 'vote', federation: sim.config.federation, round, proposal, accept: evaluation.passes, score: evaluation.score, rationale, measurement: evaluation.measurement }
}

/**
 * A room whose deliveries name the account that sent each message, as a Matrix room does
 * (the local bus names nobody): `as(account)` is that account's bus. Delivered one at a time,
 * in publish order, through one queue, as the local bus does.
 */
export function namedRoom (): { as: (account: string) => Bus, sent: Array<{ from: string, message: BusMessage }> } {
  const handlers = new Set<BusHandler>()
  const sent: Array<{ from: string, message: BusMessage }> = []
  let delivered: Promise<void> = Promise.resolve()
  return {
    sent,
    as: account => ({
      sender: account,
      async publish (_room, message) {
        sent.push({ from: account, message })
        const now = [...handlers]
        delivered = delivered.then(async () => { for (const h of now) await Promise.resolve(h(message, { from: account })).catch(() => {}) })
      },
      async subscribe (_room, handler) { handlers.add(handler); return { unsubscribe: () => { handlers.delete(handler) } } },
      async settled () { await delivered },
      async close () { await delivered }
    })
  }
}

/**
 * Member `member` of a two-member classify federation (one round, little data) under `root`: its
 * key made in `root/keys`, the other member a stranger's DID, its directory `state`, waiting a
 * second for the other; `settings` override any of it.
 */
export async function memberOfTwo (root: string, member: 1 | 2, settings: Record<string, unknown>): Promise<MemberConfig> {
  const key = `keys/agent-${member}.json`
  const me = (await loadOrCreateKeystore(join(root, key))).did
  const other = createIdentity(randomSecretKey()).did
  return parseMemberConfig({
    member, members: member === 1 ? [me, other] : [other, me], key, dir: 'state', joinSeconds: 1,
    seed: 3, rounds: 1, task: { kind: 'classify', trainLimit: 100, testLimit: 50, features: 256 }, ...settings
  }, root)
}
