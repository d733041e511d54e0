/**
 * `node bench/agent-memory-file.ts [steps]`: what saving an agent's memory costs per step, in
 * bytes written and time, at the size an agent's memory settles at (a 60-message window, as
 * `memory` defaults to, of messages about the length the protocol policy writes). Each step
 * is what a ReAct step checkpoints: a pending write of the new message, then the checkpoint.
 * Prints figures; asserts nothing.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { RunnableConfig } from '@langchain/core/runnables'
import { AIMessage, HumanMessage, type BaseMessage } from '@langchain/core/messages'
import { emptyCheckpoint } from '@langchain/langgraph-checkpoint'
import { FileCheckpointSaver } from '../graphs/file-checkpointer.ts'

const { positionals } = parseArgs({ allowPositionals: true })
const steps = Number(positionals[0] ?? 400)
const WINDOW = 60
const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-memory-'))
const path = join(dir, 'memory.json')
const size = async (file: string): Promise<number> => (await stat(file).catch(() => ({ size: 0 }))).size
/** Bytes this process has handed to write(2) so far (Linux); nothing else here writes while it runs. */
const writtenSoFar = async (): Promise<number> => Number(/^wchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1] ?? NaN)

try {
  const saver = await FileCheckpointSaver.open(path)
  const messages: BaseMessage[] = []
  let config: RunnableConfig = { configurable: { thread_id: 'did:key:z6MkBench', checkpoint_ns: '' } }
  const writtenBefore = await writtenSoFar()
  const start = performance.now()
  for (let i = 1; i <= steps; i++) {
    const message = i % 2 === 1
      ? new HumanMessage({ id: `m${i}`, content: `Peer agent-${i % 5} proposed update ${i} for round ${Math.ceil(i / 10)}; you are one of its judges. Evaluate it on your validation data, then vote.` })
      : new AIMessage({ id: `m${i}`, content: '', tool_calls: [{ id: `call-${i}`, name: 'vote', args: { proposal: `${i}`.padStart(64, 'a'), accept: true, rationale: 'accuracy on my 120 validation examples: 0.5100 → 0.5300 (+0.0200); accept' } }] })
    if (i > 1) await saver.putWrites(config, [['messages', [message]]], `task-${i}`)
    messages.push(message)
    if (messages.length > WINDOW) messages.splice(0, messages.length - WINDOW)
    config = await saver.put(config, { ...emptyCheckpoint(), id: `1f000000-0000-6000-8000-${String(i).padStart(12, '0')}`, channel_values: { messages: [...messages], steps: i % 8 }, channel_versions: { messages: i, steps: i } }, { source: 'loop', step: i, parents: {} }, { messages: i, steps: i })
  }
  const seconds = (performance.now() - start) / 1000
  const written = await writtenSoFar() - writtenBefore
  process.stdout.write(`${steps} steps (${2 * steps - 1} checkpointer calls), ${WINDOW}-message window: ${(1000 * seconds / steps).toFixed(2)} ms per step, ${(written / steps / 1024).toFixed(1)} KiB written per step; files now ${(await size(path) / 1024).toFixed(0)} KiB snapshot + ${(await size(`${path}.log`) / 1024).toFixed(0)} KiB log · node ${process.version}\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
