import { copyFile, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { RunnableConfig } from '@langchain/core/runnables'
import { AIMessage, HumanMessage } from '@langchain/core/messages'
import { emptyCheckpoint, type BaseCheckpointSaver, type CheckpointTuple } from '@langchain/langgraph-checkpoint'
import { FileCheckpointSaver } from '../../graphs/file-checkpointer.ts'
import { tempDir } from '../federation/helpers.ts'
import { agentSteps } from './memory-steps.ts'

const memoryFile = async (): Promise<string> => join(await tempDir('conclave-memory-'), 'memory.json')
/** Never rewrites the snapshot after the first change: every later change stays in the log. */
const NO_COMPACTION = { compaction: { factor: 1, floor: Infinity } }

/** Everything a saver holds, read back as LangGraph reads it: every checkpoint of every thread with its values and pending writes. */
async function contents (saver: BaseCheckpointSaver): Promise<CheckpointTuple[]> {
  const tuples: CheckpointTuple[] = []
  for await (const tuple of saver.list({})) tuples.push(tuple)
  return tuples
}

/** Copies a memory's two files into a fresh directory, the log cut to `logBytes` where given. */
async function copyMemory (path: string, logBytes?: number): Promise<string> {
  const copy = await memoryFile()
  await copyFile(path, copy)
  await copyFile(`${path}.log`, `${copy}.log`)
  if (logBytes !== undefined) await truncate(`${copy}.log`, logBytes)
  return copy
}

const size = async (path: string): Promise<number> => (await stat(path)).size

describe('FileCheckpointSaver: memory files written by earlier versions', () => {
  it.each(['1', '2'])('opens a version %s file (test/fixtures/memory) as holding what this version makes of the same steps, and goes on from it', async version => {
    const path = await memoryFile()
    await copyFile(new URL(`../fixtures/memory/version-${version}.json`, import.meta.url), path)
    const old = await FileCheckpointSaver.open(path)
    const fresh = await FileCheckpointSaver.open(await memoryFile())
    await agentSteps(fresh)
    expect(await contents(old)).toEqual(await contents(fresh))
    await agentSteps(old, { from: 6, to: 8 })
    await agentSteps(fresh, { from: 6, to: 8 })
    expect(await contents(await FileCheckpointSaver.open(path))).toEqual(await contents(fresh))
  })
})

describe('FileCheckpointSaver: a change costs what changed', () => {
  it('appends a new message to a long conversation as about the message, not the conversation', async () => {
    const path = await memoryFile()
    const saver = await FileCheckpointSaver.open(path, NO_COMPACTION)
    const thread = { thread_id: 'agent', checkpoint_ns: '' }
    const messages = Array.from({ length: 40 }, (_, i) => new HumanMessage({ id: `m${i}`, content: `message ${i}: ${'x'.repeat(1000)}` }))
    const put = async (n: number, parent?: RunnableConfig): Promise<RunnableConfig> => saver.put(parent ?? { configurable: thread }, { ...emptyCheckpoint(), id: `1f000000-0000-6000-8000-${String(n).padStart(12, '0')}`, channel_values: { messages: messages.slice(0, n) }, channel_versions: { messages: n } }, { source: 'loop', step: n, parents: {} }, { messages: n })
    let config: RunnableConfig | undefined
    for (let n = 1; n <= 39; n++) config = await put(n, config)
    const before = await size(`${path}.log`)
    await put(40, config)
    const appended = await size(`${path}.log`) - before
    const whole = Buffer.byteLength(JSON.stringify(messages))
    expect({ whole: whole > 40_000, appended: appended < 3000 }).toEqual({ whole: true, appended: true })
  })

  it('rewrites the snapshot once the log outgrows it, and reads the same before and after', async () => {
    const path = await memoryFile()
    const saver = await FileCheckpointSaver.open(path, { compaction: { factor: 1, floor: 0 } })
    await agentSteps(saver, { to: 12 })
    const limit = await size(path) + 4096 // the bound, plus the one change that crossed it
    expect(await size(`${path}.log`)).toBeLessThan(limit)
    expect(await contents(await FileCheckpointSaver.open(path))).toEqual(await contents(saver))
  })

  it('keeps both files readable by their owner only', async () => {
    const path = await memoryFile()
    await agentSteps(await FileCheckpointSaver.open(path))
    expect([(await stat(path)).mode & 0o777, (await stat(`${path}.log`)).mode & 0o777]).toEqual([0o600, 0o600])
  })
})

describe('FileCheckpointSaver: killed in a process that goes on', () => {
  // Found in CI: a restart in the same process opened a new memory on the file while the killed
  // agent's change was still being written, and their two rewrites raced (ENOENT on the rename).
  it('writes nothing after kill (a change it had not begun is lost, as in a crash), and a new memory on the file reads what was written', async () => {
    const path = await memoryFile()
    const killed = await FileCheckpointSaver.open(path, { compaction: { factor: 1, floor: 0 } })
    const config = await agentSteps(killed, { to: 3 })
    const written = await contents(killed)
    const late = agentSteps(killed, { from: 4, to: 4 })
    await killed.kill()
    await expect(late).rejects.toThrow(/killed/)
    const files = [await readFile(path), await readFile(`${path}.log`)]
    await expect(killed.putWrites(config, [['messages', []]], 'later')).rejects.toThrow(/killed/)
    expect([await readFile(path), await readFile(`${path}.log`)]).toEqual(files)
    expect(await contents(await FileCheckpointSaver.open(path))).toEqual(written)
  })
})

describe('FileCheckpointSaver: a kill at any moment', () => {
  it.each(['a checkpoint', 'a pending write'])('cut anywhere in the last record (%s), the memory opens as of the change before, and the next change writes over the torn bytes', async last => {
    const path = await memoryFile()
    const saver = await FileCheckpointSaver.open(path, NO_COMPACTION)
    const config = await agentSteps(saver, { to: 4 })
    const before = await contents(saver)
    const start = await size(`${path}.log`)
    if (last === 'a checkpoint') await agentSteps(saver, { from: 5, to: 5, pendingWrites: false })
    else await saver.putWrites(config, [['messages', [new AIMessage({ id: 'late', content: 'a late write' })]]], 'task-late')
    const end = await size(`${path}.log`)
    expect(end - start).toBeGreaterThan(100)
    for (let cut = start; cut < end; cut++) {
      const copy = await copyMemory(path, cut)
      expect(await contents(await FileCheckpointSaver.open(copy))).toEqual(before)
    }
    expect(await contents(await FileCheckpointSaver.open(await copyMemory(path, end)))).toEqual(await contents(saver))
    // Resumed after a cut just before the record's newline: its next change, shorter than the torn bytes, is read back whole, and nothing of them is left.
    const resumed = await FileCheckpointSaver.open(await copyMemory(path, end - 1))
    await resumed.putWrites(config, [['steps', 5]], 'task-small')
    expect(await contents(await FileCheckpointSaver.open(resumed.path))).toEqual(await contents(resumed))
    expect((await readFile(`${resumed.path}.log`)).at(-1)).toBe(0x0a)
  })

  it('a kill between rewriting the snapshot and starting its log leaves a log the snapshot already holds: it is set aside', async () => {
    const path = await memoryFile()
    const saver = await FileCheckpointSaver.open(path, NO_COMPACTION)
    await agentSteps(saver)
    const staleLog = await readFile(`${path}.log`)
    await agentSteps(await FileCheckpointSaver.open(path, { compaction: { factor: 0, floor: 0 } }), { from: 6, to: 6 })
    const after = await contents(await FileCheckpointSaver.open(path))
    await writeFile(`${path}.log`, staleLog) // as if killed before the new log replaced the old
    const reopened = await FileCheckpointSaver.open(path)
    expect(await contents(reopened)).toEqual(after)
    await agentSteps(reopened, { from: 7, to: 7 })
    expect(await contents(await FileCheckpointSaver.open(path))).toEqual(await contents(reopened))
  })

  it('fuzz: any sequence of changes, the log cut at any byte, opens as of the last change whole before the cut', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), thread: fc.integer({ min: 0, max: 1 }), trim: fc.integer({ min: 0, max: 2 }), add: fc.array(fc.string({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 3 }), steps: fc.boolean() }),
      fc.record({ kind: fc.constant('write' as const), thread: fc.integer({ min: 0, max: 1 }), task: fc.constantFrom('t1', 't2'), value: fc.string() }),
      fc.record({ kind: fc.constant('delete' as const), thread: fc.integer({ min: 0, max: 1 }) }))
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), fc.double({ min: 0, max: 1, noNaN: true }), async (ops, where) => {
      const path = await memoryFile()
      const saver = await FileCheckpointSaver.open(path, NO_COMPACTION)
      const threads = [0, 1].map(() => ({ messages: [] as string[], version: 0, config: undefined as RunnableConfig | undefined }))
      /** After each change: the log's size and what the memory held. */
      const states: Array<{ logBytes: number, held: CheckpointTuple[] }> = []
      let id = 0
      for (const o of ops) {
        const t = threads[o.thread] as typeof threads[number]
        const configurable = { thread_id: `thread-${o.thread}`, checkpoint_ns: '' }
        if (o.kind === 'put') {
          t.messages = [...t.messages.slice(o.trim), ...o.add]
          t.version++
          const checkpoint = { ...emptyCheckpoint(), id: `1f000000-0000-6000-8000-${String(++id).padStart(12, '0')}`, channel_values: { messages: t.messages, steps: t.version }, channel_versions: { messages: t.version, steps: o.steps ? t.version : 1 } }
          t.config = await saver.put(t.config ?? { configurable }, checkpoint, { source: 'loop', step: t.version, parents: {} }, o.steps ? { messages: t.version, steps: t.version } : { messages: t.version })
        } else if (o.kind === 'write') {
          if (t.config === undefined) continue
          await saver.putWrites(t.config, [['messages', [o.value]]], o.task)
        } else {
          await saver.deleteThread(configurable.thread_id)
          Object.assign(t, { messages: [], version: 0, config: undefined })
        }
        states.push({ logBytes: await size(`${path}.log`), held: await contents(saver) })
      }
      const first = states[0] as typeof states[number]
      const last = states.at(-1) as typeof states[number]
      const cut = Math.floor(where * last.logBytes)
      // The first change wrote the snapshot (and the log's header): a cut in the header leaves that.
      const expected = states.findLast(s => s.logBytes <= cut) ?? first
      const copy = await copyMemory(path, cut)
      const opened = await FileCheckpointSaver.open(copy, NO_COMPACTION)
      expect(await contents(opened)).toEqual(expected.held)
      await opened.put({ configurable: { thread_id: 'after', checkpoint_ns: '' } }, { ...emptyCheckpoint(), id: 'z', channel_values: { messages: ['after the cut'] }, channel_versions: { messages: 1 } }, { source: 'loop', step: 1, parents: {} }, { messages: 1 })
      expect(await contents(await FileCheckpointSaver.open(copy))).toEqual(await contents(opened))
    }), { numRuns: 40, seed: 16 })
  })
})

describe('FileCheckpointSaver: damage is not a torn tail', () => {
  const damagedMemory = { name: 'DamagedFileError', code: 'ERR_DAMAGED_FILE' }

  async function written (): Promise<{ path: string, lines: string[] }> {
    const path = await memoryFile()
    await agentSteps(await FileCheckpointSaver.open(path, NO_COMPACTION))
    return { path, lines: (await readFile(`${path}.log`, 'utf8')).split('\n') }
  }

  it('refuses a complete record that does not parse, even the last one', async () => {
    for (const record of [1, 5, 'last']) {
      const { path, lines } = await written()
      lines[record === 'last' ? lines.length - 2 : record as number] = '{"checkpoint":' // lines[0] is the header, the last line the empty one after the final newline
      await writeFile(`${path}.log`, lines.join('\n'))
      await expect(FileCheckpointSaver.open(path)).rejects.toMatchObject(damagedMemory)
    }
  })

  it('refuses a record that changes a value the memory does not hold', async () => {
    const { path, lines } = await written()
    const i = lines.findIndex(line => line.includes('"base"'))
    expect(i).toBeGreaterThan(0)
    lines[i] = (lines[i] as string).replace(/"base":"(\[[^"\\]*(\\.[^"\\]*)*)"/, '"base":"[\\"elsewhere\\"]"')
    await writeFile(`${path}.log`, lines.join('\n'))
    await expect(FileCheckpointSaver.open(path)).rejects.toMatchObject(damagedMemory)
  })

  it('refuses a log whose header is not one, and a log without its snapshot', async () => {
    const { path, lines } = await written()
    await writeFile(`${path}.log`, ['{"snapshot":"not a hash"}', ...lines.slice(1)].join('\n'))
    await expect(FileCheckpointSaver.open(path)).rejects.toMatchObject(damagedMemory)
    const alone = await written()
    await rm(alone.path)
    await expect(FileCheckpointSaver.open(alone.path)).rejects.toMatchObject(damagedMemory)
  })
})
