import { access } from 'node:fs/promises'
import { ModelNotFoundError } from '../core/errors.ts'
import type { JsonCompleter, JsonSchema } from './json-tools.ts'
import { ggufName } from './spec.ts'

type NodeLlama = typeof import('node-llama-cpp')
export type Loaded = { llama: Awaited<ReturnType<NodeLlama['getLlama']>>, model: Awaited<ReturnType<Awaited<ReturnType<NodeLlama['getLlama']>>['loadModel']>>, context: Awaited<ReturnType<Awaited<ReturnType<Awaited<ReturnType<NodeLlama['getLlama']>>['loadModel']>>['createContext']>> }

/** Most tokens one answer may take: more than the longest JSON reply its grammar allows. */
export const GGUF_MAX_TOKENS = 400

// One loaded model per file for the whole process: agents share it, one completion at a time.
const loaded = new Map<string, Promise<Loaded>>()
let chain: Promise<unknown> = Promise.resolve()

/**
 * A local GGUF model run in-process by node-llama-cpp (prebuilt CPU binaries, never built
 * at run time), answering under a JSON-schema grammar so a small model cannot emit a
 * malformed call.
 */
export function ggufCompleter (path: string, options: { maxTokens?: number, temperature?: number, seed?: number } = {}): JsonCompleter {
  return {
    name: ggufName(path),
    async complete (prompt, schema, { signal } = {}) {
      return withGguf(path, async ({ llama, context }) => {
        const { LlamaChatSession } = await import('node-llama-cpp')
        const grammar = await llama.createGrammarForJsonSchema(schema as never)
        const sequence = context.getSequence()
        const session = new LlamaChatSession({ contextSequence: sequence, systemPrompt: prompt.system, autoDisposeSequence: false })
        try {
          return await session.prompt(prompt.user, { grammar, maxTokens: options.maxTokens ?? GGUF_MAX_TOKENS, temperature: options.temperature ?? 0, seed: options.seed ?? 0, signal })
        } finally {
          // The sequence's disposal is asynchronous: awaited, so the next completion (a retry at
          // once) finds the context's only sequence free instead of failing "No sequences left".
          session.dispose({ disposeSequence: false })
          await sequence.dispose()
        }
      })
    }
  }
}

/** Runs `fn` with the file's model loaded, after every earlier use of a GGUF model has finished (one context, one user at a time). */
export async function withGguf<T> (path: string, fn: (loaded: Loaded) => Promise<T>): Promise<T> {
  const loadedModel = await load(path)
  const run = async (): Promise<T> => fn(loadedModel)
  const result = chain.then(run, run)
  chain = result.catch(() => undefined)
  return result
}

/**
 * Disposes a context sequence and waits until the context has it back. node-llama-cpp
 * returns a disposed sequence's slot asynchronously: the next use of a one-sequence context
 * would otherwise fail with "No sequences left" (it did for whole runs of agent steps).
 */
export async function releaseSequence (sequence: { dispose(): Promise<void> | void }): Promise<void> {
  await sequence.dispose()
}

/** Fails, naming the fix, when the model file is missing. */
export async function assertGgufFile (path: string): Promise<void> {
  const found = await access(path).then(() => true, () => false)
  if (!found) throw new ModelNotFoundError(`gguf model ${path} does not exist; \`npm run models:gemma\` installs Gemma 3 270M and prints its path`)
}

async function load (path: string): Promise<Loaded> {
  let model = loaded.get(path)
  if (model === undefined) {
    model = (async () => {
      await assertGgufFile(path)
      const { getLlama } = await import('node-llama-cpp')
      const llama = await getLlama({ gpu: false, build: 'never' })
      const m = await llama.loadModel({ modelPath: path })
      // One thread: llama.cpp's default (all cores, spinning) collapses to ~1 token/s when
      // the cores are shared with training; one thread measured ~30 tokens/s on 2 cores.
      const context = await m.createContext({ contextSize: 4096, sequences: 1, threads: 1 })
      return { llama, model: m, context }
    })()
    loaded.set(path, model)
    model.catch(() => loaded.delete(path))
  }
  return model
}

/** Frees every loaded model (end of a run or a test). */
export async function unloadGguf (): Promise<void> {
  const all = [...loaded.values()]
  loaded.clear()
  for (const p of all) {
    const l = await p.catch(() => undefined)
    await l?.context.dispose()
    await l?.model.dispose()
    await l?.llama.dispose()
  }
}

export type { JsonSchema }
