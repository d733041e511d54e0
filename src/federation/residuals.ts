import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DamagedFileError, InvalidWeightsError } from '../core/errors.ts'
import { readOwnFile, writeAtomic } from '../core/files.ts'
import { fromSafetensors, toSafetensors, type Weights } from '../ml/weights.ts'
import { MAX_MODEL_BYTES } from './content.ts'

const FILE = /^residual-(\d+)\.safetensors$/

/**
 * What a member trained but its compressed updates did not send yet (error feedback): its
 * own state, which the ledger cannot rebuild, kept per round in `dir` (safetensors) so a
 * restarted member publishes the very bytes it would have. Round r's update adds the
 * residual of the latest round before r; the one before that is kept too, since a member
 * killed after publishing round r but before proposing it publishes round r again.
 * Without a `dir`, kept in memory only.
 */
export class Residuals {
  readonly #dir?: string
  #byRound?: Map<number, Weights>

  constructor (dir?: string) {
    this.#dir = dir
  }

  /** What is owed to round `round`'s update: the residual of the latest round before it. */
  async owed (round: number): Promise<Weights | undefined> {
    const byRound = await this.#load()
    const earlier = [...byRound.keys()].filter(r => r < round)
    return earlier.length === 0 ? undefined : byRound.get(Math.max(...earlier))
  }

  /** Keeps what round `round`'s update left unsent, and forgets what no round can still owe. */
  async keep (round: number, residual: Weights): Promise<void> {
    const byRound = await this.#load()
    if (this.#dir !== undefined) await writeAtomic(join(this.#dir, `residual-${round}.safetensors`), toSafetensors(residual))
    byRound.set(round, residual)
    for (const r of [...byRound.keys()].filter(r => r < round - 1)) {
      byRound.delete(r)
      if (this.#dir !== undefined) await rm(join(this.#dir, `residual-${r}.safetensors`), { force: true })
    }
  }

  async #load (): Promise<Map<number, Weights>> {
    if (this.#byRound !== undefined) return this.#byRound
    const byRound = new Map<number, Weights>()
    const names = this.#dir === undefined ? [] : await readdir(this.#dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
    for (const name of names) {
      const round = FILE.exec(name)?.[1]
      if (round === undefined || this.#dir === undefined) continue
      const residual = await readResidual(join(this.#dir, name))
      if (residual !== undefined) byRound.set(Number(round), residual)
    }
    this.#byRound = byRound
    return byRound
  }
}

/**
 * A residual this member wrote, read back: only a plain file of at most MAX_MODEL_BYTES (no link
 * followed, no FIFO waited on); anything else there is a DamagedFileError naming it. Undefined
 * where it went since its folder was listed.
 */
async function readResidual (path: string): Promise<Weights | undefined> {
  const bytes = await readOwnFile(path, { is: 'the residual this member wrote', error: DamagedFileError, maxBytes: MAX_MODEL_BYTES })
  if (bytes === undefined) return undefined
  try {
    return fromSafetensors(bytes, { maxBytes: MAX_MODEL_BYTES })
  } catch (err) {
    if (err instanceof InvalidWeightsError) throw new DamagedFileError(`${path} is not the residual this member wrote: ${err.message}`, { cause: err })
    throw err
  }
}
