import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { ConfigError } from '../core/errors.ts'
import { JsonToolChatModel } from './json-tools.ts'
import { ProtocolPolicyChatModel } from './policy.ts'
import { LlmSpec } from './spec.ts'

export { AgentEvent, describeEvent, parseEvent } from './events.ts'
export { policyStep, ProtocolPolicyChatModel, refused, textOf } from './policy.ts'
export { ChatPolicyChatModel, chatPolicyStep, intentOf, quoteId } from './chat-policy.ts'
export { JsonToolChatModel, type JsonCompleter } from './json-tools.ts'

export { LlmSpec } from './spec.ts'

export interface LlmOptions {
  /** Ollama's base URL. @default http://127.0.0.1:11434 (or $OLLAMA_HOST) */
  ollamaUrl?: string
  seed?: number
}

export async function createChatModel (spec: string, options: LlmOptions = {}): Promise<BaseChatModel> {
  const parsed = LlmSpec.safeParse(spec)
  if (!parsed.success) throw new ConfigError(`--llm ${spec}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  if (spec === 'policy') return new ProtocolPolicyChatModel()
  // A missing model fails the run at once, by name: at run time every failed call would
  // quietly become a policy fallback.
  if (spec.startsWith('ollama:')) {
    const { ollamaCompleter, assertOllamaModel, nativeOllama, ollamaSupportsTools, DEFAULT_OLLAMA_URL } = await import('./ollama.ts')
    const url = options.ollamaUrl ?? ollamaHost() ?? DEFAULT_OLLAMA_URL
    const model = spec.slice('ollama:'.length)
    await assertOllamaModel(model, url)
    if (await ollamaSupportsTools(model, url)) return nativeOllama(model, url, { seed: options.seed })
    return new JsonToolChatModel(ollamaCompleter(model, url, { seed: options.seed }))
  }
  const path = spec.slice('gguf:'.length)
  const { assertGgufFile, ggufCompleter } = await import('./gguf.ts')
  await assertGgufFile(path)
  return new JsonToolChatModel(ggufCompleter(path, { seed: options.seed }))
}

function ollamaHost (): string | undefined {
  const host = process.env.OLLAMA_HOST
  if (host === undefined || host === '') return undefined
  return host.startsWith('http') ? host : `http://${host}`
}
