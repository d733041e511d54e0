import { z } from 'zod'
import { mixSeed, Rng } from '../data/rng.ts'
import { judgeOf, type Judge, type Shard, type Task } from '../ml/task.ts'
import { applyDelta, delta as deltaOf, mapValues, size, type Weights } from '../ml/weights.ts'
import { type Measured, MEASURED_LIMIT } from '../core/terms.ts'
import { meanSketch, sketch, sketchable, sketchCosine } from '../ml/similarity.ts'

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
 * included), small enough to pass distance- and statistics-based defences; `min-max`
 * (Shejwalkar and Houmansadr, NDSS 2021) sends the mean of those updates pushed against a
 * perturbation (the mean's own direction, its sign, or the updates' spread) as far as it can
 * go while no update it has seen lies farther from it than any two of them lie from each
 * other: the largest harm a distance-based defence cannot tell from an honest update;
 * `adaptive-flip` knows that voters judge on validation data and judges itself first: it
 * trains on its true labels and on flipped ones and sends the blend with the most flipped
 * update that still gains its own validation examples `keep` of what its cover gains them
 * (its honest update, or under `cover: round` the mean of the round's updates it has read
 * and its own): the attack a validation-based defence must bound; told the charter's bound
 * on how close an update may lie to the round's mean (`under`), it moves its cover towards its
 * own update as far as the bound needs. Hostile agents
 * judge and vote on others' updates honestly, except `collude`rs: they sign-flip their
 * own updates (or, with `update: honest`, propose honest ones), accept each other's and
 * reject everyone else's. Each attack starts in its
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
  z.object({ kind: z.literal('min-max'), ...Who, perturbation: z.enum(['unit', 'sign', 'std']).default('unit') }).strict(),
  z.object({
    kind: z.literal('adaptive-flip'),
    ...Who,
    keep: z.number().min(0).max(1).default(0.25).describe('the share of its cover\'s gain on its own validation examples the blend must keep'),
    share: z.number().gt(0).max(1).default(0.2).describe('the scale it judges the blend at, as voters apply an update (1/N)'),
    cover: z.enum(['own', 'round']).default('own').describe('what the flipped update hides behind: its honest update, or the mean of the round\'s updates it has read and its own'),
    under: z.number().min(-1).max(1).optional().describe('the charter\'s maxRoundCosine, read as every member reads it: under `cover: round` the blend keeps its cosine with the mean of the round\'s earlier updates at most this, its cover moved towards its own update as far as that needs')
  }).strict(),
  z.object({
    kind: z.literal('collude'),
    ...Who,
    scale: z.number().positive().default(5),
    // `honest`: the colluders propose their honest updates, which pass, so no rule that drops a rejected member's votes ever drops theirs.
    update: z.enum(['sign-flip', 'honest']).default('sign-flip').describe('what the colluders propose: their update sign-flipped ×scale, or their honest one')
  }).strict()
])
export type Attack = z.infer<typeof Attack>

/** The shard a hostile agent actually trains on. */
function poisonShard<E> (task: Task<E>, shard: Shard<E>, attack: Attack | undefined, seed: number): Shard<E> {
  if (attack?.kind === 'label-noise') return { ...shard, train: task.poison(shard.train, { kind: 'noise', rate: attack.rate, seed }) }
  if (attack?.kind === 'label-flip' || attack?.kind === 'adaptive-flip') return { ...shard, train: task.poison(shard.train, { kind: 'flip', rate: 1, seed }) }
  return shard
}

/** The update a hostile agent publishes in place of its honest Δw; `seen`: the round's other updates it has read. */
export function corruptDelta (delta: Weights, attack: Attack | undefined, seed: number, seen: readonly Weights[] = []): Weights {
  switch (attack?.kind) {
    case 'sign-flip': return mapValues(delta, v => -attack.scale * v)
    case 'collude': return attack.update === 'honest' ? delta : mapValues(delta, v => -attack.scale * v)
    case 'alie': return littleIsEnough([delta, ...seen], attack.z)
    case 'min-max': return minMax([delta, ...seen], attack.perturbation)
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

/** Whether `attack` builds its update from the round's updates proposed before it (it trains when it proposes, to read them all). */
export const readsRound = (attack: Attack | undefined): boolean => attack?.kind === 'alie' || attack?.kind === 'min-max' || (attack?.kind === 'adaptive-flip' && attack.cover === 'round')

/**
 * Min-max over `updates`: μ − γ·p, with p the perturbation (`unit`: μ/‖μ‖, `sign`: sign(μ),
 * `std`: the per-coordinate sample standard deviation) and γ ≥ 0 the largest for which
 * max_i ‖μ − γp − u_i‖ ≤ max_{i,j} ‖u_i − u_j‖. Each distance is a quadratic in γ, so γ is
 * solved for exactly rather than searched as the paper's code does; γ = 0 always qualifies
 * (the mean lies no farther from any update than the farthest pair).
 */
export function minMax (updates: readonly Weights[], perturbation: 'unit' | 'sign' | 'std'): Weights {
  const [first] = updates
  if (first === undefined) throw new RangeError('min-max needs at least one update')
  const flat = updates.map(u => flatten(first, u))
  const n = flat.length
  const mean = new Float64Array((flat[0] as Float64Array).length)
  for (const u of flat) u.forEach((v, i) => { mean[i] = (mean[i] as number) + v / n })
  const norm = Math.sqrt(dot(mean, mean)) || 1
  const p = perturbation === 'unit'
    ? mean.map(v => v / norm)
    : perturbation === 'sign'
      ? mean.map(Math.sign)
      : mean.map((m, i) => n < 2 ? 0 : Math.sqrt(flat.reduce((sum, u) => sum + ((u[i] as number) - m) ** 2, 0) / (n - 1)))
  const offsets = flat.map(u => mean.map((m, i) => m - (u[i] as number)))
  const squares = offsets.map(o => dot(o, o))
  let spread = 0
  offsets.forEach((a, i) => offsets.forEach((b, j) => { if (j > i) spread = Math.max(spread, (squares[i] as number) + (squares[j] as number) - 2 * dot(a, b)) }))
  // ‖o_i − γp‖² ≤ D² ⇔ γ²‖p‖² − 2γ⟨o_i, p⟩ + ‖o_i‖² − D² ≤ 0: γ up to the larger root, for every i.
  const e = dot(p, p)
  const gamma = e === 0 ? 0 : Math.max(0, Math.min(...offsets.map((o, i) => {
    const c = dot(o, p)
    return (c + Math.sqrt(Math.max(0, c * c - e * ((squares[i] as number) - spread)))) / e
  })))
  let at = 0
  const out: Weights = new Map()
  for (const [name, t] of first) {
    out.set(name, { shape: [...t.shape], data: Float32Array.from(t.data, (_, i) => (mean[at + i] as number) - gamma * (p[at + i] as number)) })
    at += t.data.length
  }
  return out
}

/** `u`'s values in `layout`'s tensor order, one vector (a tensor `u` lacks counts as zeros). */
function flatten (layout: Weights, u: Weights): Float64Array {
  const out = new Float64Array(size(layout))
  let at = 0
  for (const [name, t] of layout) {
    const data = u.get(name)?.data
    if (data !== undefined) out.set(data, at)
    at += t.data.length
  }
  return out
}

function dot (a: Float64Array, b: Float64Array): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number)
  return sum
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
async function localUpdate<E> (task: Task<E>, shard: Shard<E>, global: Weights, options: { attack?: Attack, seed: number, round: number, memory: { first?: Weights }, seen?: readonly Weights[], clean?: Shard<E> }): Promise<LocalUpdate> {
  const seed = mixSeed(options.seed, options.round)
  const { attack, memory } = options
  // A free-rider never trains when it can copy: the first update of the round it has read, then that one again.
  if (attack?.kind === 'free-ride' || attack?.kind === 'stale') memory.first ??= options.seen?.[0]
  if ((attack?.kind === 'free-ride' || attack?.kind === 'stale') && memory.first !== undefined) {
    const rng = new Rng(seed)
    const delta = attack.kind === 'free-ride' ? memory.first : mapValues(memory.first, v => v * (1 + attack.noise * rng.normal()))
    return { delta, numSamples: task.samples(shard), loss: 0 }
  }
  if (attack?.kind === 'adaptive-flip') {
    const clean = options.clean ?? shard
    const trained = await task.train(global, clean, { seed, round: options.round })
    const honest = deltaOf(trained.weights, global)
    const flipped = deltaOf((await task.train(global, shard, { seed, round: options.round })).weights, global)
    const hide = (cover: Weights): Promise<Weights> => mostFlippedPassing(judgeOf(task), global, cover, flipped, clean.val, attack)
    const read = options.seen ?? []
    // The round's mean is μ − 0·σ.
    const delta = attack.cover === 'own' ? await hide(honest) : await hiddenUnder(hide, honest, littleIsEnough([honest, ...read], 0), read, attack.under)
    return { delta, trained: honest, numSamples: trained.numSamples, loss: trained.loss }
  }
  const trained = await task.train(global, shard, { seed, round: options.round })
  const honest = deltaOf(trained.weights, global)
  const delta = corruptDelta(honest, attack, seed, options.seen)
  memory.first ??= delta
  const numSamples = attack?.kind === 'inflate-samples' ? Math.min(2 ** 31 - 1, Math.round(trained.numSamples * attack.factor)) : trained.numSamples
  return { delta, trained: honest, numSamples, loss: trained.loss }
}

/** Bisection steps over the blend's share of the flipped update: to within 2⁻¹⁰. */
const BLEND_STEPS = 10

/** (1 − β)·a + β·b. */
function blendOf (a: Weights, b: Weights, beta: number): Weights {
  return new Map([...a].map(([name, t]) => {
    const other = (b.get(name) as { data: Float32Array }).data
    return [name, { shape: [...t.shape], data: t.data.map((v, i) => (1 - beta) * v + beta * (other[i] as number)) }]
  }))
}

/**
 * The flipped update hidden behind the round's mean, and, with a bound on how close an update
 * may lie to the mean of the round's earlier updates, behind a cover moved from that mean
 * towards the attacker's own update (bisection) as little as keeps the blend under it. The
 * cosine is taken as voters take it, between sketches: of the updates it read, which are those
 * anchored before its own. Its own update as the cover when nothing else keeps under the bound.
 */
async function hiddenUnder (hide: (cover: Weights) => Promise<Weights>, own: Weights, roundMean: Weights, read: readonly Weights[], under: number | undefined): Promise<Weights> {
  const full = await hide(roundMean)
  // Voters keep no sketch of an update none can be taken of (they measure nothing against it), and reject one as unmeasurable.
  const sketched = read.filter(sketchable)
  if (under === undefined || sketched.length === 0) return full
  const earlier = meanSketch(sketched.map(sketch))
  const hides = (d: Weights): boolean => sketchable(d) && sketchCosine(sketch(d), earlier) <= under
  if (hides(full)) return full
  let best: Weights | undefined
  let [passing, failing] = [0, 1]
  for (let step = 0; step < BLEND_STEPS; step++) {
    const lambda = (passing + failing) / 2
    const blend = await hide(blendOf(own, roundMean, lambda))
    if (hides(blend)) [best, passing] = [blend, lambda]
    else failing = lambda
  }
  return best ?? await hide(own)
}

/**
 * (1 − β)·cover + β·flipped with the largest β in [0, 1] whose gain on `val` at `share` is at
 * least `keep` of the cover's gain there (β = 0, the cover, when that gains nothing).
 */
export async function mostFlippedPassing<E> (judge: Judge<E>, global: Weights, cover: Weights, flipped: Weights, val: E[], { keep, share }: { keep: number, share: number }): Promise<Weights> {
  const blend = (beta: number): Weights => blendOf(cover, flipped, beta)
  const before = await judge.score(global, val)
  const gainOf = async (d: Weights): Promise<number> => await judge.score(applyDelta(global, d, share), val) - before
  const bar = keep * await gainOf(cover)
  if (!(bar > 0)) return cover
  if (await gainOf(flipped) >= bar) return flipped
  let [passing, failing] = [0, 1]
  for (let step = 0; step < BLEND_STEPS; step++) {
    const beta = (passing + failing) / 2
    if (await gainOf(blend(beta)) >= bar) passing = beta
    else failing = beta
  }
  return blend(passing)
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
    return localUpdate(this.#task, this.#poisoned.shard, global, { attack, seed: this.#seed, round, memory: this.#memory, seen, clean: shard })
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
