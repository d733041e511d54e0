import { z } from 'zod'
import { mixSeed, Rng } from '../data/rng.ts'
import type { Shard, Task } from '../ml/task.ts'
import { delta as deltaOf, mapValues, type Weights } from '../ml/weights.ts'
import { type Measured, MEASURED_LIMIT } from '../core/terms.ts'

const Agent = z.number().int().min(1).describe('1-based index of the hostile agent (agent-N)')
/** Who attacks, and from when: a member may behave until the record vouches for it, then turn. */
const Who = {
  agent: Agent,
  fromRound: z.number().int().min(1).default(1).describe('the first round it attacks in; it is honest before')
}

/**
 * How a hostile participant misbehaves. Data attacks poison its training labels; update
 * attacks replace its honest Δw before publishing; free-riding re-posts its first update
 * instead of training (or, when it can, a copy of the round's first update it read), `stale`
 * re-posts it disguised by a little noise; `inflate-samples`
 * claims far more training examples than it has; `alie` ("A Little Is Enough", Baruch et
 * al. 2019) sends μ − z·σ, per coordinate, of the round's updates it has seen (its own
 * included), small enough to pass distance- and statistics-based defences. Hostile agents
 * judge and vote on others' updates honestly, except `collude`rs: they sign-flip their
 * own updates, accept each other's and reject everyone else's. Each attack starts in its
 * `fromRound`; before it the member trains, proposes and votes honestly.
 */
export const Attack = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('label-noise'), ...Who, rate: z.number().min(0).max(1).default(0.5) }).strict(),
  z.object({ kind: z.literal('label-flip'), ...Who }).strict(),
  z.object({ kind: z.literal('sign-flip'), ...Who, scale: z.number().positive().default(1) }).strict(),
  z.object({ kind: z.literal('scale'), ...Who, factor: z.number().default(10) }).strict(),
  z.object({ kind: z.literal('random-noise'), ...Who, std: z.number().positive().default(0.1) }).strict(),
  z.object({ kind: z.literal('free-ride'), ...Who }).strict(),
  z.object({ kind: z.literal('stale'), ...Who, noise: z.number().positive().default(1e-3).describe('relative noise on the re-sent update') }).strict(),
  z.object({ kind: z.literal('inflate-samples'), ...Who, factor: z.number().min(1).default(1e6) }).strict(),
  z.object({ kind: z.literal('alie'), ...Who, z: z.number().default(1) }).strict(),
  z.object({ kind: z.literal('collude'), ...Who, scale: z.number().positive().default(5) }).strict()
])
export type Attack = z.infer<typeof Attack>

/** The shard a hostile agent actually trains on. */
function poisonShard<E> (task: Task<E>, shard: Shard<E>, attack: Attack | undefined, seed: number): Shard<E> {
  if (attack?.kind === 'label-noise') return { ...shard, train: task.poison(shard.train, { kind: 'noise', rate: attack.rate, seed }) }
  if (attack?.kind === 'label-flip') return { ...shard, train: task.poison(shard.train, { kind: 'flip', rate: 1, seed }) }
  return shard
}

/** The update a hostile agent publishes in place of its honest Δw; `seen`: the round's other updates it has read. */
export function corruptDelta (delta: Weights, attack: Attack | undefined, seed: number, seen: readonly Weights[] = []): Weights {
  switch (attack?.kind) {
    case 'sign-flip': case 'collude': return mapValues(delta, v => -attack.scale * v)
    case 'alie': return littleIsEnough([delta, ...seen], attack.z)
    case 'scale': return mapValues(delta, v => attack.factor * v)
    case 'random-noise': {
      const rng = new Rng(seed)
      return mapValues(delta, () => attack.std * rng.normal())
    }
    default: return delta
  }
}

/** μ − z·σ per coordinate over `updates` (population σ), tensor by tensor. */
export function littleIsEnough (updates: readonly Weights[], z: number): Weights {
  const [first] = updates
  if (first === undefined) throw new RangeError('ALIE needs at least one update')
  const out: Weights = new Map()
  for (const [name, t] of first) {
    const data = new Float32Array(t.data.length)
    // Looked up once per tensor, not once per value.
    const columns = updates.map(u => u.get(name)?.data ?? new Float32Array(data.length))
    for (let i = 0; i < data.length; i++) {
      let sum = 0
      let squares = 0
      for (const column of columns) {
        const v = column[i] as number
        sum += v
        squares += v * v
      }
      const mean = sum / updates.length
      data[i] = mean - z * Math.sqrt(Math.max(0, squares / updates.length - mean * mean))
    }
    out.set(name, { shape: [...t.shape], data })
  }
  return out
}

export interface LocalUpdate {
  delta: Weights
  /** The Δw the member trained, before any attack replaced it (absent when it did not train). */
  trained?: Weights
  numSamples: number
  loss: number
}

/**
 * One participant's update for a round: train from the global model on its (possibly
 * poisoned) shard and publish Δw, unless it is hostile. `memory` keeps a free-rider's
 * first update between rounds.
 */
async function localUpdate<E> (task: Task<E>, shard: Shard<E>, global: Weights, options: { attack?: Attack, seed: number, round: number, memory: { first?: Weights }, seen?: readonly Weights[] }): Promise<LocalUpdate> {
  const seed = mixSeed(options.seed, options.round)
  const { attack, memory } = options
  // A free-rider never trains when it can copy: the first update of the round it has read, then that one again.
  if (attack?.kind === 'free-ride' || attack?.kind === 'stale') memory.first ??= options.seen?.[0]
  if ((attack?.kind === 'free-ride' || attack?.kind === 'stale') && memory.first !== undefined) {
    const rng = new Rng(seed)
    const delta = attack.kind === 'free-ride' ? memory.first : mapValues(memory.first, v => v * (1 + attack.noise * rng.normal()))
    return { delta, numSamples: task.samples(shard), loss: 0 }
  }
  const trained = await task.train(global, shard, { seed, round: options.round })
  const honest = deltaOf(trained.weights, global)
  const delta = corruptDelta(honest, attack, seed, options.seen)
  memory.first ??= delta
  const numSamples = attack?.kind === 'inflate-samples' ? Math.min(2 ** 31 - 1, Math.round(trained.numSamples * attack.factor)) : trained.numSamples
  return { delta, trained: honest, numSamples, loss: trained.loss }
}

/**
 * How one member makes its updates, honestly or as its attack says, and what an attack
 * keeps between rounds: a free-rider's first update, a data attacker's poisoned copy of
 * its shard (made again when the shard changes, as distilling changes it). Live
 * participants and the FedAvg baseline alike make their updates through one.
 */
export class Conduct<E = unknown> {
  readonly #task: Task<E>
  readonly #attack: Attack | undefined
  readonly #seed: number
  readonly #memory: { first?: Weights } = {}
  #poisoned?: { from: Shard<E>, shard: Shard<E> }

  /** My attack, from the round it starts in (honest before, and always when I carry none). */
  attackAt (round: number): Attack | undefined {
    return this.#attack !== undefined && round >= this.#attack.fromRound ? this.#attack : undefined
  }

  constructor (task: Task<E>, attack: Attack | undefined, seed: number) {
    this.#task = task
    this.#attack = attack
    this.#seed = seed
  }

  /** My update for `round`, trained from `global` on `shard` (or on its poisoned copy). */
  /** `seen`: the round's updates already proposed, which a hostile member may read. */
  async update (shard: Shard<E>, global: Weights, round: number, seen: readonly Weights[] = []): Promise<LocalUpdate> {
    const attack = this.attackAt(round)
    if (attack === undefined) return localUpdate(this.#task, shard, global, { seed: this.#seed, round, memory: this.#memory, seen })
    if (this.#poisoned?.from !== shard) this.#poisoned = { from: shard, shard: poisonShard(this.#task, shard, attack, this.#seed) }
    return localUpdate(this.#task, this.#poisoned.shard, global, { attack, seed: this.#seed, round, memory: this.#memory, seen })
  }
}

/**
 * What a colluder signs as measured so that its vote looks like every rule's: an accept claims
 * the update changed nothing, its own update and the round's combination neither (so no gain
 * is asked of it), and that it lies along its own; a reject claims it ruined the model and
 * the round's combination. The numbers come from its own data, so nobody can tell them from honest ones.
 */
export function forgedMeasurement (measured: Measured, accept: boolean): Measured {
  const { before } = measured
  if (!accept) return { ...measured, after: -MEASURED_LIMIT, initial: before, ...(measured.combined === undefined ? {} : { combined: -MEASURED_LIMIT, without: before }) }
  return {
    ...measured,
    after: before,
    initial: before,
    ...(measured.reference === undefined ? {} : { reference: before }),
    ...(measured.combined === undefined ? {} : { combined: before, without: before }),
    ...(measured.classes === undefined ? {} : { classes: measured.classes.map(c => ({ ...c, combined: c.without })) }),
    ...(measured.geometry === undefined ? {} : { geometry: { normRatio: 1, cosine: 1, earlierCosine: -1, historyCosine: 1 } })
  }
}
