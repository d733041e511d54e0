import { describe, expect, it } from 'vitest'
import { drawCommittee, type CommitteeSlot } from '../../src/federation/committee.ts'
import { createIdentity } from '../../src/identity/index.ts'

const members = Array.from({ length: 20 }, (_, i) => createIdentity(new Uint8Array(32).fill(i + 1)).did)
const slot: CommitteeSlot = { federation: 'fed', round: 3, base: 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i', proposer: members[4] as string }

describe('the committee draw', () => {
  it('draws k of the proposer\'s peers, the same for whoever re-derives it, in whatever order it lists the members', () => {
    const committee = drawCommittee(slot, members, 5)
    expect(committee).toHaveLength(5)
    expect(new Set(committee).size).toBe(5)
    expect(committee).not.toContain(slot.proposer)
    expect(drawCommittee({ ...slot }, [...members].reverse(), 5)).toEqual(committee)
    // A larger committee extends the smaller one: the members are ranked once.
    expect(drawCommittee(slot, members, 7).slice(0, 5)).toEqual(committee)
  })

  it('draws anew for another round, base model, proposer or federation', () => {
    const committee = drawCommittee(slot, members, 5)
    const others = [{ round: 4 }, { base: 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu' }, { proposer: members[5] as string }, { federation: 'other' }]
    for (const change of others) expect(drawCommittee({ ...slot, ...change }, members, 5)).not.toEqual(committee)
  })

  it('spreads the seats evenly: over 2,000 slots every peer sits on about k/(N−1) of the committees', () => {
    const seats = new Map<string, number>()
    for (let round = 1; round <= 2000; round++) {
      for (const m of drawCommittee({ ...slot, round }, members, 5)) seats.set(m, (seats.get(m) ?? 0) + 1)
    }
    // Expected 2,000 · 5/19 ≈ 526 each; binomial sd ≈ 20, so ±100 is five of them.
    expect(seats.size).toBe(19)
    for (const n of seats.values()) expect(Math.abs(n - 2000 * 5 / 19)).toBeLessThan(100)
  })
})
