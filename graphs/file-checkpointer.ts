import { BaseCheckpointSaver, MemorySaver, type ChannelVersions, type Checkpoint, type CheckpointListOptions, type CheckpointMetadata, type CheckpointTuple, type PendingWrite } from '@langchain/langgraph-checkpoint'
import type { RunnableConfig } from '@langchain/core/runnables'
import { z } from 'zod'
import { decodeDelta, DeltaPart, encodeDelta, inserted } from '../src/core/byte-delta.ts'
import { DamagedFileError } from '../src/core/errors.ts'
import { SerialQueue } from '../src/core/serial-queue.ts'
import { SnapshotLog, type SnapshotLogOptions } from '../src/core/snapshot-log.ts'
import { MessageListSerializer } from './message-serde.ts'

const KEEP = 3
const Bytes = z.object({ $bytes: z.base64() })
const Serialised = z.custom<Uint8Array>(value => value instanceof Uint8Array, 'expected bytes')
/** A stored checkpoint: its bytes, its metadata's, its parent's id. */
const Entry = z.tuple([Serialised, Serialised, z.string().nullish().transform(parent => parent ?? undefined)])
/**
 * The snapshot. Version 1 kept every channel's value inside each checkpoint; version 2 keeps each
 * value once per channel version, in `blobs`. A checkpoint without a parent was written with
 * `null` for it (JSON has no undefined), read back as undefined.
 */
const Snapshot = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  storage: z.record(z.string(), z.record(z.string(), z.record(z.string(), Entry))),
  writes: z.record(z.string(), z.record(z.string(), z.tuple([z.string(), z.string(), Serialised], z.string()))),
  blobs: z.record(z.string(), z.tuple([z.string(), Serialised])).default({})
})

/** A channel value written whole, or as pieces of an earlier value (`base`) and the bytes between them (src/core/byte-delta.ts). */
const Blob = z.union([z.tuple([z.string(), Serialised]), z.strictObject({ base: z.string(), parts: z.array(DeltaPart) })])
/** One line of the log: one change (a checkpoint and its new values, a task's writes, a thread deleted) and what it let go. */
const Step = z.strictObject({
  checkpoint: z.tuple([z.string(), z.string(), z.string(), Entry]).optional(),
  writes: z.tuple([z.string(), z.record(z.string(), z.tuple([z.string(), z.string(), Serialised, z.string().optional()]))]).optional(),
  deleteThread: z.string().optional(),
  blobs: z.record(z.string(), Blob).optional(),
  dropped: z.strictObject({ checkpoints: z.array(z.tuple([z.string(), z.string(), z.string()])), blobs: z.array(z.string()) }).optional()
})
type Step = z.input<typeof Step>
type Dropped = NonNullable<Step['dropped']>

/**
 * LangGraph's MemorySaver, persisted: a snapshot file (`memory.json`) and a log beside it
 * (`memory.json.log`, src/core/snapshot-log.ts) to which every checkpoint and every pending
 * write appends one line, fdatasync'ed, with only what changed; the snapshot is rewritten
 * once the log outgrows it. A kill at any moment leaves the memory as of the last complete
 * change. Small by design: an agent keeps one thread whose history it trims. A restarted
 * agent opens the same files and resumes.
 *
 * As LangGraph's checkpointer contract asks (and MemorySaver does not do), a checkpoint
 * stores only the channels that changed (`newVersions`): each channel value is kept once per
 * version, and a checkpoint read back gathers its values by its `channel_versions`. A new
 * value goes in the log as the bytes it changes in the channel's previous value (messages
 * appended to a conversation), not whole.
 */
export class FileCheckpointSaver extends MemorySaver {
  readonly path: string
  /** Serialised channel values by `[thread, namespace, channel, version]`. */
  blobs: Record<string, [string, Uint8Array]> = Object.create(null) as Record<string, [string, Uint8Array]>
  /** Every change and the file write after it, one at a time. */
  readonly #changes = new SerialQueue()
  readonly #file: SnapshotLog
  /** The blob last written for each `[thread, namespace, channel]`: the next value of that channel is logged against it. */
  readonly #latest = new Map<string, string>()
  readonly #channelVersions = new WeakMap<Uint8Array, ChannelVersions>()
  #killed = false

  private constructor (path: string, file: SnapshotLog) {
    super(new MessageListSerializer())
    this.path = path
    this.#file = file
  }

  /** `compaction`: when the snapshot is rewritten (SnapshotLogOptions); tests make it often. */
  static async open (path: string, options: Pick<SnapshotLogOptions, 'compaction'> = {}): Promise<FileCheckpointSaver> {
    const { log, contents } = await SnapshotLog.open(path, { ...options, mode: 0o600 }).catch((err: unknown) => {
      throw err instanceof DamagedFileError ? damaged(path, err) : err
    })
    const saver = new FileCheckpointSaver(path, log)
    if (contents.snapshot !== undefined) {
      let snapshot: z.infer<typeof Snapshot>
      try {
        snapshot = Snapshot.parse(JSON.parse(contents.snapshot, revive))
      } catch (err) {
        throw damaged(path, err)
      }
      Object.assign(saver.storage, snapshot.storage)
      Object.assign(saver.writes, snapshot.writes)
      Object.assign(saver.blobs, snapshot.blobs)
    }
    for (const [i, line] of contents.records.entries()) {
      try {
        await saver.#apply(Step.parse(JSON.parse(line, revive)))
      } catch (err) {
        throw damaged(`${log.logPath} (record ${i + 1})`, err)
      }
    }
    return saver
  }

  override async put (config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions = {}): Promise<RunnableConfig> {
    return this.#changes.run(async () => {
      const result = await super.put(config, { ...checkpoint, channel_values: {} }, metadata)
      const { thread_id: thread, checkpoint_ns: ns, checkpoint_id: id } = result.configurable as { thread_id: string, checkpoint_ns: string, checkpoint_id: string }
      const step = { checkpoint: [thread, ns, id, this.storage[thread]?.[ns]?.[id] as z.input<typeof Entry>], blobs: {} as Record<string, z.input<typeof Blob>> } satisfies Step
      for (const [channel, version] of Object.entries(newVersions)) {
        if (!(channel in checkpoint.channel_values)) continue
        const key = blobKey(thread, ns, channel, version)
        const blob = await this.serde.dumpsTyped(checkpoint.channel_values[channel])
        step.blobs[key] = this.#encode(key, blob)
        this.#setBlob(key, blob)
      }
      await this.#commit(step)
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
      const { thread_id: thread, checkpoint_ns: ns, checkpoint_id: id } = config.configurable ?? {}
      const key = JSON.stringify([thread, ns, id]) // MemorySaver's key for a checkpoint's writes
      const before = { ...this.writes[key] }
      await super.putWrites(config, writes, taskId)
      const changed = Object.entries(this.writes[key] ?? {}).filter(([inner, write]) => before[inner] !== write)
      await this.#commit({ writes: [key, Object.fromEntries(changed)] })
    })
  }

  override async deleteThread (threadId: string): Promise<void> {
    await this.#changes.run(async () => {
      await this.#forget(threadId)
      await this.#commit({ deleteThread: threadId })
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

  async #forget (threadId: string): Promise<void> {
    await super.deleteThread(threadId)
    for (const key of Object.keys(this.blobs)) if (parseBlobKey(key)[0] === threadId) delete this.blobs[key]
  }

  /** Lets go of what no longer matters, then logs the change with what it let go. */
  async #commit (step: Step): Promise<void> {
    if (this.#killed) throw new Error(`${this.path}: the agent was killed, and writes nothing more`)
    const dropped = await this.#unkept()
    this.#drop(dropped)
    await this.#file.append(JSON.stringify({ ...step, dropped }, replace), () => JSON.stringify({ version: 2, storage: this.storage, writes: this.writes, blobs: this.blobs }, replace))
  }

  /**
   * Writes nothing more, as a killed process would not; resolves once the change in flight is
   * on disk (a restart in the same process found its rewrite racing the new memory's).
   */
  async kill (): Promise<void> {
    this.#killed = true
    await this.#changes.idle()
  }

  /** Closes the memory's files once every change is written; a later change opens them again. */
  async close (): Promise<void> {
    await this.#changes.run(async () => { await this.#file.close() })
  }

  /** Replays one logged change: what `put`, `putWrites`, `deleteThread` and `#commit` did to memory. */
  async #apply (step: z.infer<typeof Step>): Promise<void> {
    if (step.checkpoint !== undefined) {
      const [thread, ns, id, entry] = step.checkpoint
      const threads = this.storage[thread] ??= Object.create(null) as Record<string, Record<string, [Uint8Array, Uint8Array, string | undefined]>>
      const checkpoints = threads[ns] ??= Object.create(null) as Record<string, [Uint8Array, Uint8Array, string | undefined]>
      checkpoints[id] = entry
    }
    if (step.writes !== undefined) Object.assign(this.writes[step.writes[0]] ??= Object.create(null) as Record<string, [string, string, Uint8Array]>, step.writes[1])
    if (step.deleteThread !== undefined) await this.#forget(step.deleteThread)
    for (const [key, blob] of Object.entries(step.blobs ?? {})) this.#setBlob(key, this.#decode(blob))
    if (step.dropped !== undefined) this.#drop(step.dropped)
  }

  #setBlob (key: string, blob: [string, Uint8Array]): void {
    this.blobs[key] = blob
    const [thread, ns, channel] = parseBlobKey(key)
    this.#latest.set(JSON.stringify([thread, ns, channel]), key)
  }

  /** A new value as pieces of its channel's previous value and the bytes between them, where those are much fewer than the value's. */
  #encode (key: string, [type, bytes]: [string, Uint8Array]): z.input<typeof Blob> {
    const [thread, ns, channel] = parseBlobKey(key)
    const base = this.#latest.get(JSON.stringify([thread, ns, channel]))
    const previous = base === undefined ? undefined : this.blobs[base]
    if (base === undefined || previous === undefined || previous[0] !== type) return [type, bytes]
    const parts = encodeDelta(previous[1], bytes)
    return inserted(parts) + 256 < bytes.length ? { base, parts } : [type, bytes]
  }

  #decode (blob: z.infer<typeof Blob>): [string, Uint8Array] {
    if (Array.isArray(blob)) return blob
    const previous = this.blobs[blob.base]
    if (previous === undefined) throw new Error(`it changes a value the memory does not hold (${blob.base})`)
    return [previous[0], decodeDelta(previous[1], blob.parts)]
  }

  /**
   * All but the latest `KEEP` checkpoints of each thread, their writes, and the values no kept
   * checkpoint refers to (resuming needs only the last).
   */
  async #unkept (): Promise<Dropped> {
    const dropped: Dropped = { checkpoints: [], blobs: [] }
    const kept = new Set<string>()
    for (const [thread, namespaces] of Object.entries(this.storage)) {
      for (const [ns, checkpoints] of Object.entries(namespaces)) {
        const ids = Object.keys(checkpoints).sort()
        for (const id of ids.slice(0, -KEEP)) dropped.checkpoints.push([thread, ns, id])
        for (const id of ids.slice(-KEEP)) {
          for (const [channel, version] of Object.entries(await this.#versions(checkpoints[id]?.[0] as Uint8Array))) kept.add(blobKey(thread, ns, channel, version))
        }
      }
    }
    dropped.blobs = Object.keys(this.blobs).filter(key => !kept.has(key))
    return dropped
  }

  /** A stored checkpoint's channel versions, read once per checkpoint (its bytes are never changed): every change asks them of the kept checkpoints. */
  async #versions (bytes: Uint8Array): Promise<ChannelVersions> {
    const known = this.#channelVersions.get(bytes)
    if (known !== undefined) return known
    const { channel_versions: versions } = await this.serde.loadsTyped('json', bytes) as Checkpoint
    this.#channelVersions.set(bytes, versions)
    return versions
  }

  /** Synchronous, so a read never sees a checkpoint without its values. */
  #drop ({ checkpoints, blobs }: Dropped): void {
    for (const [thread, ns, id] of checkpoints) {
      delete this.storage[thread]?.[ns]?.[id]
      delete this.writes[JSON.stringify([thread, ns, id])]
    }
    for (const key of blobs) delete this.blobs[key]
  }
}

const damaged = (what: string, err: unknown): DamagedFileError =>
  new DamagedFileError(`agent memory ${what} is damaged (${(err as Error).message}): move memory.json and memory.json.log away to start this agent with a blank memory; what it did is on the ledger`, { cause: err })

const blobKey = (thread: string, ns: string, channel: string, version: number | string): string => JSON.stringify([thread, ns, channel, version])
const parseBlobKey = (key: string): [string, string, string, number | string] => JSON.parse(key) as [string, string, string, number | string]

function replace (_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString('base64') } : value
}

function revive (_key: string, value: unknown): unknown {
  const bytes = Bytes.safeParse(value)
  return bytes.success ? new Uint8Array(Buffer.from(bytes.data.$bytes, 'base64')) : value
}
