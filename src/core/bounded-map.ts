/**
 * A Map that keeps the `limit` keys set most recently: setting one more drops the oldest.
 * For caches that would otherwise grow for as long as a process runs.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly limit: number

  constructor (limit: number) {
    super()
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a bounded map keeps at least one key, not ${limit}`)
    this.limit = limit
  }

  override set (key: K, value: V): this {
    this.delete(key) // a key set again counts as new
    super.set(key, value)
    if (this.size > this.limit) this.delete(this.keys().next().value as K)
    return this
  }
}
