import { BaseCheckpointSaver, MemorySaver, type ChannelVersions, type Checkpoint, type CheckpointListOptions, type CheckpointMetadata, type CheckpointTuple, type PendingWrite } from '@langchain/langgraph-checkpoint'
import type { RunnableConfig } from '@langchain/core/runnables'
import { z } from 'zod'
import { DamagedFileError } from '../src/core/errors.ts'
import { readIfExists, writeAtomic } from '../src/core/files.ts'
import { SerialQueue } from '../src/core/serial-queue.ts'

const KEEP = 3
const Bytes = z.object({ $bytes: z.base64() })
const Serialised = z.instanceof(Uint8Array)
/**
 * The file. Version 1 kept every channel's value inside each checkpoint; version 2 keeps each
 * value once per channel version, in `blobs`. A checkpoint without a parent was written with
 * `null` for it (JSON has no undefined), read back as undefined.
 */
const Snapshot = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  storage: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.tuple([Serialised, Serialised, z.string().nullish().transform(parent => parent ?? undefined)])))),
  writes: z.record(z.string(), z.record(z.string(), z.tuple([z.string(), z.string(), Serialised], z.string()))),
  blobs: z.record(z.string(), z.tuple([z.string(), Serialised])).default({})
})

/**
 * LangGraph's MemorySaver, persisted: after every checkpoint and every pending write the
 * whole store is rewritten to one JSON file (atomically, so a kill leaves the old or the new
 * file, never half of one). Small by design: an agent keeps one thread whose history it
 * trims. A restarted agent opens the same file and resumes.
 *
 * As LangGraph's checkpointer contract asks (and MemorySaver does not do), a checkpoint
 * stores only the channels that changed (`newVersions`): each channel value is kept once per
 * version, and a checkpoint read back gathers its values by its `channel_versions`.
 */
export class FileCheckpointSaver extends MemorySaver {
  readonly path: string
  /** Serialised channel values by `[thread, namespace, channel, version]`. */
  blobs: Record<string, [string, Uint8Array]> = Object.create(null) as Record<string, [string, Uint8Array]>
  /** Every change and the file write after it, one at a time. */
  readonly #changes = new SerialQueue()

  private constructor (path: string) {
    super()
    this.path = path
  }

  static async open (path: string): Promise<FileCheckpointSaver> {
    const saver = new FileCheckpointSaver(path)
    const text = (await readIfExists(path))?.toString('utf8')
    if (text !== undefined) {
      let snapshot: z.infer<typeof Snapshot>
      try {
        snapshot = Snapshot.parse(JSON.parse(text, revive))
      } catch (err) {
        throw new DamagedFileError(`agent memory ${path} is damaged (${(err as Error).message}): move it away to start this agent with a blank memory; what it did is on the ledger`, { cause: err })
      }
      Object.assign(saver.storage, snapshot.storage)
      Object.assign(saver.writes, snapshot.writes)
      Object.assign(saver.blobs, snapshot.blobs)
    }
    return saver
  }

  override async put (config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions = {}): Promise<RunnableConfig> {
    return this.#changes.run(async () => {
      const result = await super.put(config, { ...checkpoint, channel_values: {} }, metadata)
      const { thread_id: thread, checkpoint_ns: ns } = result.configurable as { thread_id: string, checkpoint_ns: string }
      for (const [channel, version] of Object.entries(newVersions)) {
        if (channel in checkpoint.channel_values) this.blobs[blobKey(thread, ns, channel, version)] = await this.serde.dumpsTyped(checkpoint.channel_values[channel])
      }
      await this.#save()
      return result
    })
  }

  override async getTuple (config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const tuple = await super.getTuple(config)
    return tuple === undefined ? undefined : this.#withValues(tuple)
  }

  override async * list (config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    for await (const tuple of super.list(config, options)) yield this.#withValues(tuple)
  }

  /** MemorySaver's shortcut reads values from its raw storage, where they are no longer kept; the general walk reads them through `getTuple`. */
  override async getDeltaChannelHistory (options: Parameters<MemorySaver['getDeltaChannelHistory']>[0]): ReturnType<MemorySaver['getDeltaChannelHistory']> {
    return BaseCheckpointSaver.prototype.getDeltaChannelHistory.call(this, options)
  }

  override async putWrites (config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> {
    await this.#changes.run(async () => {
      await super.putWrites(config, writes, taskId)
      await this.#save()
    })
  }

  override async deleteThread (threadId: string): Promise<void> {
    await this.#changes.run(async () => {
      await super.deleteThread(threadId)
      for (const key of Object.keys(this.blobs)) if (parseBlobKey(key)[0] === threadId) delete this.blobs[key]
      await this.#save()
    })
  }

  /** A checkpoint's channel values, from the blobs of its channel versions; values kept inline (version 1 files, migrated sends) win. */
  async #withValues (tuple: CheckpointTuple): Promise<CheckpointTuple> {
    const { thread_id: thread, checkpoint_ns: ns = '' } = tuple.config.configurable as { thread_id: string, checkpoint_ns?: string }
    const values: Record<string, unknown> = {}
    for (const [channel, version] of Object.entries(tuple.checkpoint.channel_versions)) {
      const blob = this.blobs[blobKey(thread, ns, channel, version)]
      if (blob !== undefined) values[channel] = await this.serde.loadsTyped(...blob)
    }
    return { ...tuple, checkpoint: { ...tuple.checkpoint, channel_values: { ...values, ...tuple.checkpoint.channel_values } } }
  }

  /**
   * Drops all but the latest `KEEP` checkpoints of each thread, their writes, and the values
   * no kept checkpoint refers to (resuming needs only the last); then rewrites the file.
   * Runs inside `#changes`, and deletes only after its last await, so a read never sees a
   * checkpoint without its values.
   */
  async #save (): Promise<void> {
    const dropped: Array<[Record<string, unknown>, string, string]> = []
    const kept = new Set<string>()
    for (const [thread, namespaces] of Object.entries(this.storage)) {
      for (const [ns, checkpoints] of Object.entries(namespaces)) {
        const ids = Object.keys(checkpoints).sort()
        for (const id of ids.slice(0, -KEEP)) dropped.push([checkpoints, id, JSON.stringify([thread, ns, id])])
        for (const id of ids.slice(-KEEP)) {
          const { channel_versions: versions } = await this.serde.loadsTyped('json', checkpoints[id]?.[0] as Uint8Array) as Checkpoint
          for (const [channel, version] of Object.entries(versions)) kept.add(blobKey(thread, ns, channel, version))
        }
      }
    }
    for (const [checkpoints, id, writes] of dropped) {
      delete checkpoints[id]
      delete this.writes[writes]
    }
    for (const key of Object.keys(this.blobs)) if (!kept.has(key)) delete this.blobs[key]
    await writeAtomic(this.path, JSON.stringify({ version: 2, storage: this.storage, writes: this.writes, blobs: this.blobs }, replace), { mode: 0o600 })
  }
}

const blobKey = (thread: string, ns: string, channel: string, version: number | string): string => JSON.stringify([thread, ns, channel, version])
const parseBlobKey = (key: string): [string, string, string, number | string] => JSON.parse(key) as [string, string, string, number | string]

function replace (_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString('base64') } : value
}

function revive (_key: string, value: unknown): unknown {
  const bytes = Bytes.safeParse(value)
  return bytes.success ? new Uint8Array(Buffer.from(bytes.data.$bytes, 'base64')) : value
}
