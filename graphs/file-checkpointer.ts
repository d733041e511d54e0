import { MemorySaver, type Checkpoint, type CheckpointMetadata, type PendingWrite } from '@langchain/langgraph-checkpoint'
import type { RunnableConfig } from '@langchain/core/runnables'
import { z } from 'zod'
import { ConfigError } from '../src/core/errors.ts'
import { readIfExists, writeAtomic } from '../src/core/files.ts'

const KEEP = 3
const Bytes = z.object({ $bytes: z.base64() })
const Snapshot = z.object({ version: z.literal(1), storage: z.record(z.string(), z.unknown()), writes: z.record(z.string(), z.unknown()) })

/**
 * LangGraph's MemorySaver, persisted: after every checkpoint and every pending write the
 * whole store is rewritten to one JSON file (atomically, so a kill leaves the old or the new
 * file, never half of one). Small by design: an agent keeps
 * one thread whose history it trims. A restarted agent opens the same file and resumes.
 */
export class FileCheckpointSaver extends MemorySaver {
  readonly path: string
  #saving: Promise<void> = Promise.resolve()

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
        throw new ConfigError(`agent memory ${path} is damaged: ${(err as Error).message}`, { cause: err })
      }
      Object.assign(saver.storage, snapshot.storage)
      Object.assign(saver.writes, snapshot.writes)
    }
    return saver
  }

  override async put (config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata): Promise<RunnableConfig> {
    const result = await super.put(config, checkpoint, metadata)
    await this.#save()
    return result
  }

  override async putWrites (config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> {
    await super.putWrites(config, writes, taskId)
    await this.#save()
  }

  override async deleteThread (threadId: string): Promise<void> {
    await super.deleteThread(threadId)
    await this.#save()
  }

  /** Drops all but the latest `KEEP` checkpoints of each thread (and their writes): resuming needs only the last. */
  #prune (): void {
    for (const [thread, namespaces] of Object.entries(this.storage)) {
      for (const [ns, checkpoints] of Object.entries(namespaces)) {
        for (const id of Object.keys(checkpoints).sort().slice(0, -KEEP)) {
          delete checkpoints[id]
          delete this.writes[JSON.stringify([thread, ns, id])]
        }
      }
    }
  }

  async #save (): Promise<void> {
    this.#prune()
    const save = async (): Promise<void> => writeAtomic(this.path, JSON.stringify({ version: 1, storage: this.storage, writes: this.writes }, replace), { mode: 0o600 })
    this.#saving = this.#saving.then(save, save)
    await this.#saving
  }
}

function replace (_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString('base64') } : value
}

function revive (_key: string, value: unknown): unknown {
  const bytes = Bytes.safeParse(value)
  return bytes.success ? new Uint8Array(Buffer.from(bytes.data.$bytes, 'base64')) : value
}
