import { z } from 'zod'
import { mixSeed, Rng } from '../data/rng.ts'
import type { Shard, Task } from '../ml/task.ts'
import { delta as deltaOf, mapValues, type Weights } from '../ml/weights.ts'

const Agent = z.number().int().min(1).describe('1-based index of the hostile agent (agent-N)')

/**
 * How a hostile participant misbehaves. Data attacks poison its training labels; update
 * attacks replace its honest Δw before publishing; free-riding re-posts its first update
 * instead of training. Hostile agents still judge and vote on others' updates honestly,
 * so what is measured is the damage their own updates do.
 */
export const Attack = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('label-noise'), agent: Agent, rate: z.number().min(0).max(1).default(0.5) }).strict(),
  z.object({ kind: z.literal('label-flip'), agent: Agent }).strict(),
  z.object({ kind: z.literal('sign-flip'), agent: Agent, scale: z.number().positive().default(1) }).strict(),
  z.object({ kind: z.literal('scale'), agent: Agent, factor: z.number().default(10) }).strict(),
  z.object({ kind: z.literal('random-noise'), agent: Agent, std: z.number().positive().default(0.1) }).strict(),
  z.object({ kind: z.literal('free-ride'), agent: Agent }).strict()
])
export type Attack = z.infer<typeof Attack>

/** The shard a hostile agent actually trains on. */
function poisonShard<E> (task: Task<E>, shard: Shard<E>, attack: Attack | undefined, seed: number): Shard<E> {
  if (attack?.kind === 'label-noise') return { ...shard, train: task.poison(shard.train, { kind: 'noise', rate: attack.rate, seed }) }
  if (attack?.kind === 'label-flip') return { ...shard, train: task.poison(shard.train, { kind: 'flip', rate: 1, seed }) }
  return shard
}

/** The update a hostile agent publishes in place of its honest Δw. */
export function corruptDelta (delta: Weights, attack: Attack | undefined, seed: number): Weights {
  switch (attack?.kind) {
    case 'sign-flip': return mapValues(delta, v => -attack.scale * v)
    case 'scale': return mapValues(delta, v => attack.factor * v)
    case 'random-noise': {
      const rng = new Rng(seed)
      return mapValues(delta, () => attack.std * rng.normal())
    }
    default: return delta
  }
}

export interface LocalUpdate {
  delta: Weights
  numSamples: number
  loss: number
}

/**
 * One participant's update for a round: train from the global model on its (possibly
 * poisoned) shard and publish Δw, unless it is hostile. `memory` keeps a free-rider's
 * first update between rounds.
 */
async function localUpdate<E> (task: Task<E>, shard: Shard<E>, global: Weights, options: { attack?: Attack, seed: number, round: number, memory: { first?: Weights } }): Promise<LocalUpdate> {
  const seed = mixSeed(options.seed, options.round)
  if (options.attack?.kind === 'free-ride' && options.memory.first !== undefined) {
    return { delta: options.memory.first, numSamples: shard.train.length, loss: 0 }
  }
  const trained = await task.train(global, shard, { seed, round: options.round })
  const delta = corruptDelta(deltaOf(trained.weights, global), options.attack, seed)
  options.memory.first ??= delta
  return { delta, numSamples: trained.numSamples, loss: trained.loss }
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

  constructor (task: Task<E>, attack: Attack | undefined, seed: number) {
    this.#task = task
    this.#attack = attack
    this.#seed = seed
  }

  /** My update for `round`, trained from `global` on `shard` (or on its poisoned copy). */
  async update (shard: Shard<E>, global: Weights, round: number): Promise<LocalUpdate> {
    if (this.#poisoned?.from !== shard) this.#poisoned = { from: shard, shard: poisonShard(this.#task, shard, this.#attack, this.#seed) }
    return localUpdate(this.#task, this.#poisoned.shard, global, { attack: this.#attack, seed: this.#seed, round, memory: this.#memory })
  }
}
