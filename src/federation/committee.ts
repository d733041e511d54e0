import { hash } from 'node:crypto'
import { BoundedMap } from '../core/bounded-map.ts'
import type { Cid, Did } from '../core/records.ts'

/** What a proposal's committee is drawn from: nothing its proposer chooses in the round. */
export interface CommitteeSlot {
  federation: string
  round: number
  /**
   * The model the round trains from: the previous checkpoint's (the charter's in round 1),
   * which every member had to derive and agree on before the round opened.
   */
  base: Cid
  proposer: Did
}

/** How the draw names members: by place in the charter's list, or (charters from before it) by DID. */
export type CommitteeDraw = 'place' | 'did'

const DOMAIN: Record<CommitteeDraw, string> = { did: 'conclave/committee/v1', place: 'conclave/committee/v2' }

/**
 * The k members who judge the proposal in `slot`, in draw order: the other members ranked
 * by sha-256(seed ‖ proposer ‖ member), seed = sha-256(domain ‖ federation ‖ round ‖ base),
 * each member named by its place in the charter's list (`by: place`). Charters from before
 * that named them by DID: a simulation's members get fresh keys every run, and committees
 * drawn by DID made two runs of one seed judge (and merge) differently.
 *
 * The slot is (round, proposer), never the proposal's content or block id: a proposer who
 * could re-roll its committee by re-encoding its update (flipping a low bit of Δw is free)
 * would try until it drew friends. Its only lever left is the base model, which it shares
 * with every merged proposer of the round before (docs/committees.md bounds what that buys).
 */
export function drawCommittee (slot: CommitteeSlot, members: readonly Did[], size: number, by: CommitteeDraw = 'place'): Did[] {
  const seed = sha256(DOMAIN[by], slot.federation, String(slot.round), slot.base)
  // Every participant of a process draws every proposal's committee from the charter's one (frozen) member list.
  const kept = keptDraws(members)
  const key = `${seed}\0${slot.proposer}\0${size}`
  const known = kept?.get(key)
  if (known !== undefined) return [...known]
  const name = (member: Did, place: number): string => by === 'place' ? String(place) : member
  const proposer = name(slot.proposer, members.indexOf(slot.proposer))
  const drawn = members
    .map((member, place) => ({ member, rank: sha256(seed, proposer, name(member, place)) }))
    .filter(r => r.member !== slot.proposer)
    // Ranks are sha-256 digests: equal ones would be a collision, so the DID order below never decides.
    .sort((a, b) => a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : a.member < b.member ? -1 : 1)
    .slice(0, size)
    .map(r => r.member)
  kept?.set(key, drawn)
  return [...drawn]
}

/** The draws kept for a frozen member list (its contents are then part of the key); none for a list that may still change. */
function keptDraws (members: readonly Did[]): BoundedMap<string, readonly Did[]> | undefined {
  if (!Object.isFrozen(members)) return undefined
  let kept = draws.get(members)
  if (kept === undefined) draws.set(members, kept = new BoundedMap(DRAWS_KEPT))
  return kept
}

/** Draws made in this process, by member list and slot, oldest first. */
const draws = new WeakMap<readonly Did[], BoundedMap<string, readonly Did[]>>()
/** Per member list: a round of 100 members draws 100. */
const DRAWS_KEPT = 1024

/** sha-256 of the parts, each ended by a NUL so no two lists of parts hash the same text. */
function sha256 (...parts: string[]): string {
  return hash('sha256', parts.join('\0') + '\0', 'hex')
}
