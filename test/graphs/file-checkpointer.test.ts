import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { deltaChannelHistoryTests, specTest, type CheckpointSaverTestInitializer } from '@langchain/langgraph-checkpoint-validation'
import { BaseCheckpointSaver, emptyCheckpoint, MemorySaver, uuid6, type ChannelVersions, type Checkpoint, type CheckpointListOptions, type CheckpointMetadata, type CheckpointTuple, type PendingWrite } from '@langchain/langgraph-checkpoint'
import type { RunnableConfig } from '@langchain/core/runnables'
import { FileCheckpointSaver } from '../../graphs/file-checkpointer.ts'
import { tempDir } from '../federation/helpers.ts'

// LangGraph's checkpointer validation suite is written Jest-style: its spec calls describe,
// it and expect as globals (it imports no test runner). It gets this project's vitest.
Object.assign(globalThis, { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it })

const memoryFile = async (): Promise<string> => join(await tempDir('conclave-memory-'), 'memory.json')

/**
 * Writes through one saver and reads through a fresh one opened on the same files each
 * time, so the suite checks what a restarted agent finds on disk: the snapshot and the log
 * replayed on it.
 */
class ReopenedCheckpointSaver extends BaseCheckpointSaver {
  readonly writer: FileCheckpointSaver
  constructor (writer: FileCheckpointSaver) {
    super()
    this.writer = writer
  }

  async getTuple (config: RunnableConfig): Promise<CheckpointTuple | undefined> { return (await FileCheckpointSaver.open(this.writer.path)).getTuple(config) }
  async * list (config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> { yield * (await FileCheckpointSaver.open(this.writer.path)).list(config, options) }
  async put (config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, versions: ChannelVersions): Promise<RunnableConfig> { return this.writer.put(config, checkpoint, metadata, versions) }
  async putWrites (config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> { return this.writer.putWrites(config, writes, taskId) }
  async deleteThread (threadId: string): Promise<void> { return this.writer.deleteThread(threadId) }
}

const fileSaver: CheckpointSaverTestInitializer<BaseCheckpointSaver> = {
  checkpointerName: 'FileCheckpointSaver',
  createCheckpointer: async () => FileCheckpointSaver.open(await memoryFile())
}

const reopened: CheckpointSaverTestInitializer<BaseCheckpointSaver> = {
  checkpointerName: 'FileCheckpointSaver, read back from its file',
  createCheckpointer: async () => new ReopenedCheckpointSaver(await FileCheckpointSaver.open(await memoryFile()))
}

const compacting: CheckpointSaverTestInitializer<BaseCheckpointSaver> = {
  checkpointerName: 'FileCheckpointSaver rewriting its snapshot after every change, read back from its file',
  createCheckpointer: async () => new ReopenedCheckpointSaver(await FileCheckpointSaver.open(await memoryFile(), { compaction: { factor: 0, floor: 0 } }))
}

for (const initializer of [fileSaver, reopened, compacting]) {
  specTest(initializer)
  deltaChannelHistoryTests(initializer) // opt-in upstream: the walk LangGraph's DeltaChannel resumes from
}

describe('FileCheckpointSaver: its file', () => {
  it('refuses a damaged file by name instead of starting with a blank memory', async () => {
    const path = await memoryFile()
    await writeFile(path, '{"version":1,"storage":')
    await expect(FileCheckpointSaver.open(path)).rejects.toMatchObject({ name: 'DamagedFileError', code: 'ERR_DAMAGED_FILE' })
  })

  it('reads a version 1 file (each checkpoint holding all its values, no parent written as null) as it was written', async () => {
    const before = new MemorySaver() // what version 1 kept, and how it wrote it
    const checkpoint = { ...emptyCheckpoint(), id: uuid6(0), channel_values: { messages: ['hello'], steps: 2 }, channel_versions: { messages: 3, steps: 2 } }
    const config = await before.put({ configurable: { thread_id: 'agent', checkpoint_ns: '' } }, checkpoint, { source: 'loop', step: 1, parents: {} })
    await before.putWrites(config, [['messages', ['again']]], 'task-1')
    const path = await memoryFile()
    await writeFile(path, JSON.stringify({ version: 1, storage: before.storage, writes: before.writes }, (_key, value: unknown) => value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString('base64') } : value))
    const reopened = await FileCheckpointSaver.open(path)
    expect(await reopened.getTuple(config)).toEqual(await before.getTuple(config))
  })
})
