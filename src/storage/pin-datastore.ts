import { FsDatastore } from 'datastore-fs'
import type { AbortOptions } from '../core/options.ts'

type Key = Parameters<FsDatastore['put']>[0]

/** Helia's record that a block is held by pins: one per block. */
const BLOCK_RECORD = '/pinned-block/'
/** Block records written at once. */
const WRITES_IN_FLIGHT = 16

/**
 * The datastore under Helia's pins. Helia records a pin's blocks one after another, and
 * each record is a read that misses and a write (a temporary file, then a rename): most
 * of a pin's time, spent waiting on the thread pool. Here a block record's write returns
 * at once and runs beside up to WRITES_IN_FLIGHT others. A read of a key waits for its
 * pending write; any other write, such as the pin's own record that Helia writes after
 * all its blocks', first waits for every pending one and fails if one of them failed, so
 * a pin is still recorded only once its blocks are.
 */
export class PinDatastore extends FsDatastore {
  readonly #pending = new Map<string, Promise<void>>()
  #failure: unknown

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD)) {
      await this.settle()
      return super.put(key, value, options)
    }
    while (this.#pending.has(name) || this.#pending.size >= WRITES_IN_FLIGHT) await Promise.race(this.#pending.values())
    const write = super.put(key, value, options).then(
      () => { this.#pending.delete(name) },
      (err: unknown) => { this.#pending.delete(name); this.#failure ??= err }
    )
    this.#pending.set(name, write)
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    await this.#pending.get(key.toString())
    return super.get(key, options)
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    await this.#pending.get(key.toString())
    return super.has(key, options)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    await this.#pending.get(key.toString())
    return super.delete(key, options)
  }

  /** Waits for every pending block record; throws the first failure among them (once). */
  async settle (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending.values())
    const failure = this.#failure
    this.#failure = undefined
    if (failure !== undefined) throw failure
  }
}
