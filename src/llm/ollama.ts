import { AsyncLocalStorage } from 'node:async_hooks'
import { ChatOllama } from '@langchain/ollama'
import { BackendUnavailableError, ModelNotFoundError } from '../core/errors.ts'
import type { JsonCompleter } from './json-tools.ts'

export const DEFAULT_OLLAMA_URL = 'http://127.0.0.1:11434'

/** fetch refusing redirects: followed, a 307 would re-send the agent's prompt to whatever the Location names. */
const unredirected: typeof fetch = async (input, init) => fetch(input, { ...init, redirect: 'error' })

/**
 * `unredirected`, its request also ended when `signal` (the model call's) aborts: ChatOllama
 * heeds a call's signal only between streamed chunks, so a server that never answers would
 * keep the connection open after the agent gave up, one more for every retried step.
 */
function heeding (signal: AbortSignal | undefined): typeof fetch {
  return async (input, init) => unredirected(input, { ...init, signal: signal === undefined ? init?.signal : AbortSignal.any([signal, ...(init?.signal == null ? [] : [init.signal])]) })
}

/**
 * A model served by Ollama through ChatOllama, answering under Ollama's `format` JSON
 * schema: works for models without tool tags in their template (Gemma 3 answers 400
 * "does not support tools" when sent tools).
 */
export function ollamaCompleter (model: string, url = DEFAULT_OLLAMA_URL, options: { temperature?: number, seed?: number } = {}): JsonCompleter {
  return {
    name: `ollama:${model}`,
    async complete (prompt, schema, { signal } = {}) {
      const chat = new ChatOllama({ model, baseUrl: url, format: schema, temperature: options.temperature ?? 0, seed: options.seed ?? 0, fetch: heeding(signal) })
      try {
        const reply = await chat.invoke([['system', prompt.system], ['human', prompt.user]], { signal })
        return typeof reply.content === 'string' ? reply.content : JSON.stringify(reply.content)
      } catch (err) {
        throw explainOllamaError(err, model, url)
      }
    }
  }
}

/** Turns "fetch failed" and 404s into errors that name the command that fixes them. */
export function explainOllamaError (err: unknown, model: string, url: string): Error {
  const e = err as { cause?: { code?: string, message?: string }, status_code?: number, message?: string }
  if (e.cause?.message === 'unexpected redirect') return new BackendUnavailableError(`Ollama at ${url} answered with a redirect: refused, a prompt is sent to the configured URL only`, { cause: err })
  if (e.cause?.code === 'ECONNREFUSED' || /fetch failed/.test(e.message ?? '')) {
    return new BackendUnavailableError(`no Ollama server at ${url}: start one with \`npm run services:up\` (scripts/services/ollama.sh up)`, { cause: err })
  }
  if (e.status_code === 404 || /not found/i.test(e.message ?? '')) {
    return new ModelNotFoundError(`Ollama at ${url} has no model ${model}: \`ollama pull ${model}\`, or \`scripts/services/ollama.sh up\` for the project's Gemma 3 270M`, { cause: err })
  }
  return err instanceof Error ? err : new Error(String(err))
}

/** Checks that the server answers and has the model; the error names the command that fixes it. */
export async function assertOllamaModel (model: string, url = DEFAULT_OLLAMA_URL): Promise<void> {
  let tags: { models?: Array<{ name: string, model?: string }> }
  try {
    const response = await fetch(new URL('/api/tags', url), { signal: AbortSignal.timeout(3000) })
    tags = await response.json() as typeof tags
  } catch (err) {
    throw explainOllamaError(err instanceof Error && err.name === 'TimeoutError' ? new Error('fetch failed') : err, model, url)
  }
  const names = (tags.models ?? []).flatMap(m => [m.name, m.model ?? m.name])
  const wanted = model.includes(':') ? [model] : [model, `${model}:latest`]
  if (!names.some(n => wanted.includes(n))) throw explainOllamaError({ status_code: 404, message: `model ${model} not found` }, model, url)
}

/**
 * Whether Ollama says the model takes native tool calls (`capabilities` of /api/show holds
 * `tools`: llama3.1+, qwen3). Such a model keeps its own tool calling; the others (Gemma 3)
 * answer under a JSON-schema `format`. Any doubt (an older server, no answer) means no.
 */
export async function ollamaSupportsTools (model: string, url = DEFAULT_OLLAMA_URL): Promise<boolean> {
  try {
    const response = await fetch(new URL('/api/show', url), { method: 'POST', body: JSON.stringify({ model }), signal: AbortSignal.timeout(3000) })
    if (!response.ok) return false
    const shown = await response.json() as { capabilities?: unknown }
    return Array.isArray(shown.capabilities) && shown.capabilities.includes('tools')
  } catch {
    return false
  }
}

/** The signal of the `invoke` in progress, for the fetch of a model built once and called many times. */
const invokeSignal = new AsyncLocalStorage<AbortSignal | undefined>()

/** ChatOllama whose requests end when the `invoke` that made them is aborted (a model call's timeout, a kill). */
class AbortableChatOllama extends ChatOllama {
  override async invoke (...[input, options]: Parameters<ChatOllama['invoke']>): ReturnType<ChatOllama['invoke']> {
    return invokeSignal.run(options?.signal, async () => super.invoke(input, options))
  }
}

/** A model served by Ollama with its native tool calling; the graph validates every call as it does for the others. */
export function nativeOllama (model: string, url = DEFAULT_OLLAMA_URL, options: { temperature?: number, seed?: number } = {}): ChatOllama {
  return new AbortableChatOllama({ model, baseUrl: url, temperature: options.temperature ?? 0, seed: options.seed ?? 0, fetch: async (input, init) => heeding(invokeSignal.getStore())(input, init) })
}
