/**
 * Runs `task` on every item with at most `limit` running at once, results in the items'
 * order: enough in flight to keep the thread pool's threads busy (file reads, hashing,
 * signature checks), few enough to hold little memory. The first failure rejects.
 */
export async function mapConcurrently<T, R> (items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`at least one task runs at a time, not ${limit}`)
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i] as T, i)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
