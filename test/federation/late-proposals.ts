import { vi } from 'vitest'
import type { Proposal } from '../../src/core/records.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { chartered, recorderOf } from './helpers.ts'

/** The proposal `member` would anchor for `round`: its update trained and stored, the proposal withheld until a test anchors it. */
export async function withheldProposal (sim: Simulation, member: Participant, round = 1): Promise<Proposal> {
  const draft = await member.train(round)
  const delta = await member.publishDraft()
  return { type: 'proposal', federation: sim.config.federation, round, base: member.state.global?.model.cid as string, delta, numSamples: draft.numSamples, metric: { name: 'loss', value: draft.loss } }
}

/**
 * Anchors `proposal`, signed by `by`, just before `recorder`'s checkpoint of its round, after
 * the recorder merged it: the block it is in, once anchored.
 */
export function slipBeforeCheckpoint (sim: Simulation, { recorder, by, proposal }: { recorder: Participant, by: Participant, proposal: Proposal }): () => string | undefined {
  const append = sim.ledger.append.bind(sim.ledger)
  let slipped: string | undefined
  vi.spyOn(sim.ledger, 'append').mockImplementation(async (jwt, options) => {
    const { record, issuer } = peekRecord(jwt)
    if (slipped === undefined && record?.type === 'checkpoint' && issuer === recorder.did) {
      slipped = (await append(await by.identity.sign(proposal, { now: sim.now() }))).id
    }
    return append(jwt, options)
  })
  return () => slipped
}

/**
 * Round 1 of three members, driven by hand: the recorder's and one other member's proposals
 * are in and judged; the third, hostile, has trained and stored its update and withholds
 * its proposal (and its votes).
 */
export async function oneWithheld (windowSeconds?: number): Promise<{ sim: Simulation, recorder: Participant, honest: Participant, hostile: Participant, late: Proposal }> {
  const sim = await chartered({ rounds: 1, agents: 3, ...(windowSeconds === undefined ? {} : { windowSeconds }) })
  const recorder = recorderOf(sim, 1)
  const [honest, hostile] = sim.participants.filter(q => q !== recorder) as [Participant, Participant]
  await sim.propose(1, [recorder, honest])
  for (const id of recorder.state.rounds.get(1)?.proposals ?? []) {
    const voter = recorder.state.proposals.get(id)?.signed.issuer === recorder.did ? honest : recorder
    await voter.vote(id, (await voter.evaluate(id)).passes)
  }
  await sim.settle()
  return { sim, recorder, honest, hostile, late: await withheldProposal(sim, hostile) }
}
