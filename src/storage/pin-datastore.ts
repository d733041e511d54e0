import { FsDatastore } from 'datastore-fs'
import type { AbortOptions } from '../core/options.ts'

type Key = Parameters<FsDatastore['put']>[0]

/** Helia's record that a block is held by pins: one per block. */
const BLOCK_RECORD = '/pinned-block/'
/** Block records written at once. */
const WRITES_IN_FLIGHT = 16

/** What FsDatastore throws for a key it lacks; Helia tells a missing record by the name. */
class NotFoundError extends Error {
  override name = 'NotFoundError'
}

/**
 * The datastore under Helia's pins. Helia records a pin's blocks one after another, and
 * each record is a read that misses and a write (a temporary file, then a rename): most
 * of a pin's time, spent waiting on the thread pool. Here a block record's write returns
 * at once and runs beside up to WRITES_IN_FLIGHT others. A read of a key waits for its
 * pending write; any other write, such as the pin's own record that Helia writes after
 * all its blocks', first waits for every pending one and fails if one of them failed, so
 * a pin is still recorded only once its blocks are. The block records' keys are listed
 * once when the store opens and kept up to date (this process is their only writer), so
 * the read of a block no pin holds yet misses without asking the disk.
 */
export class PinDatastore extends FsDatastore {
  readonly #pending = new Map<string, Promise<void>>()
  #failure: unknown
  /** Every block record on disk or being written; undefined until opened. */
  #records?: Set<string>

  override async open (): Promise<void> {
    await super.open()
    const records = new Set<string>()
    for await (const key of super.queryKeys({ prefix: BLOCK_RECORD })) records.add(key.toString())
    this.#records = records
  }

  /** Whether `name` is a block record known not to exist. */
  #absent (name: string): boolean {
    return this.#records !== undefined && name.startsWith(BLOCK_RECORD) && !this.#records.has(name)
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD)) {
      await this.settle()
      return super.put(key, value, options)
    }
    while (this.#pending.has(name) || this.#pending.size >= WRITES_IN_FLIGHT) await Promise.race(this.#pending.values())
    this.#records?.add(name)
    const write = super.put(key, value, options).then(
      () => { this.#pending.delete(name) },
      (err: unknown) => { this.#pending.delete(name); this.#failure ??= err }
    )
    this.#pending.set(name, write)
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const name = key.toString()
    if (this.#absent(name)) throw new NotFoundError(`no record ${name}`)
    await this.#pending.get(name)
    return super.get(key, options)
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    const name = key.toString()
    if (this.#absent(name)) return false
    await this.#pending.get(name)
    return super.has(key, options)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    const name = key.toString()
    await this.#pending.get(name)
    await super.delete(key, options)
    this.#records?.delete(name)
  }

  /** Waits for every pending block record; throws the first failure among them (once). */
  async settle (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending.values())
    const failure = this.#failure
    this.#failure = undefined
    if (failure !== undefined) throw failure
  }
}
