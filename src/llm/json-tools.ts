import { randomUUID } from 'node:crypto'
import { BaseChatModel, type BaseChatModelParams, type BindToolsInput } from '@langchain/core/language_models/chat_models'
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { toJsonSchema } from '@langchain/core/utils/json_schema'
import { textOf } from './policy.ts'

/** A JSON schema in the subset both llama.cpp grammars and Ollama's `format` accept. */
export type JsonSchema = Record<string, unknown>

/** One constrained completion: the model must answer with JSON matching `schema`. */
export interface JsonCompleter {
  readonly name: string
  complete(prompt: { system: string, user: string }, schema: JsonSchema, options?: { signal?: AbortSignal }): Promise<string>
}

/**
 * Tool calling for models without native tool support (small local models, Gemma 3 in
 * Ollama): each step the model answers one JSON object, constrained by a schema built from
 * the bound tools — `{"tool": name, "args": {...}}` or `{"reply": text}` — so it cannot
 * emit malformed JSON; the args are still validated by the graph against each tool's zod
 * schema (the grammar cannot express patterns or ranges).
 */
export class JsonToolChatModel extends BaseChatModel {
  readonly completer: JsonCompleter
  readonly tools: readonly Tool[]
  /** Whether the answer must call a tool (`tool_choice: 'any'` or `'required'`): no reply branch. */
  readonly mustCall: boolean

  constructor (completer: JsonCompleter, tools: readonly Tool[] = [], fields: BaseChatModelParams & { mustCall?: boolean } = {}) {
    super(fields)
    this.completer = completer
    this.tools = tools
    this.mustCall = fields.mustCall === true
  }

  _llmType (): string { return 'conclave-json-tools' }

  override bindTools (tools: BindToolsInput[], kwargs: { tool_choice?: unknown } = {}): JsonToolChatModel {
    const mustCall = (kwargs.tool_choice === 'any' || kwargs.tool_choice === 'required') && tools.length > 0
    return new JsonToolChatModel(this.completer, tools as Tool[], { mustCall })
  }

  async _generate (messages: BaseMessage[], options: this['ParsedCallOptions']): Promise<ChatResult> {
    const schema = decisionSchema(this.tools, { mustCall: this.mustCall })
    const text = await this.completer.complete(renderPrompt(messages, this.tools), schema, { signal: options.signal })
    // Tool-call ids must be unique across the whole thread: ToolNode skips a call whose id already has a result.
    const message = toMessage(text, `call-${randomUUID()}`)
    return { generations: [{ text, message }] }
  }
}

/** What the model needs of a tool: its name, what it is for, and the schema of its arguments. */
type Tool = Pick<StructuredToolInterface, 'name' | 'description' | 'schema'>

/**
 * Longest reply the grammar allows. A completion is cut at its token budget, and a small
 * model may spend a token a character (Gemma 3 270M wrote a reply of digits until it was cut): a reply
 * this long still ends its JSON within the GGUF completer's budget.
 */
export const REPLY_MAX_LENGTH = 200

/** `{"tool": …, "args": …}` per tool, or `{"reply": …}` unless a tool call is required. */
export function decisionSchema (tools: readonly Tool[], { mustCall = false }: { mustCall?: boolean } = {}): JsonSchema {
  const reply = { type: 'object', properties: { reply: { type: 'string', minLength: 1, maxLength: REPLY_MAX_LENGTH } }, required: ['reply'] }
  return {
    oneOf: [
      ...tools.map(t => ({
        type: 'object',
        properties: { tool: { const: t.name }, args: simplify(toJsonSchema(t.schema as never) as JsonSchema) },
        required: ['tool', 'args']
      })),
      ...(mustCall ? [] : [reply])
    ]
  }
}

/** Most values an integer range may have to be offered as their list. */
const LISTED_RANGE = 100

/**
 * Keeps what grammars support: types, properties (all required), enums, consts, arrays,
 * lengths. Grammars have no numeric ranges, so a small integer range becomes the list of
 * its values: otherwise the grammar lets a model answer what the schema then refuses
 * (Gemma 3 270M asked read_ledger for the last -1 records).
 */
export function simplify (schema: JsonSchema): JsonSchema {
  const out: JsonSchema = {}
  for (const key of ['type', 'enum', 'const', 'description', 'maxLength', 'minLength']) if (schema[key] !== undefined) out[key] = schema[key]
  const { minimum: low, maximum: high } = schema
  if (schema.type === 'integer' && out.enum === undefined && Number.isInteger(low) && Number.isInteger(high) && (high as number) - (low as number) < LISTED_RANGE) {
    out.enum = Array.from({ length: (high as number) - (low as number) + 1 }, (_, i) => (low as number) + i)
  }
  if (schema.type === 'object') {
    const properties = Object.fromEntries(Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>).map(([k, v]) => [k, simplify(v)]))
    out.properties = properties
    out.required = Object.keys(properties)
    out.additionalProperties = false
  }
  if (schema.type === 'array' && schema.items !== undefined) out.items = simplify(schema.items as JsonSchema)
  if (Array.isArray(schema.anyOf)) out.oneOf = (schema.anyOf as JsonSchema[]).map(simplify)
  return out
}

/** A compact transcript: the system prompt and tool list, then this turn's event and results. */
export function renderPrompt (messages: readonly BaseMessage[], tools: readonly Tool[]): { system: string, user: string } {
  const system = messages.filter(m => m.type === 'system').map(textOf).join('\n\n')
  const toolList = tools.map(t => `- ${t.name}: ${t.description}${argumentsOf(t)}`).join('\n')
  const start = messages.findLastIndex(m => m.type === 'human')
  const turn = messages.slice(Math.max(0, start)).filter(m => m.type !== 'system').map(m => {
    if (m.type === 'human') return `EVENT: ${textOf(m)}`
    if (m.type === 'tool') return `RESULT of ${(m as BaseMessage & { name?: string }).name ?? 'tool'}: ${textOf(m).slice(0, 600)}`
    const calls = (m as AIMessage).tool_calls ?? []
    return calls.length > 0 ? calls.map(c => `YOU CALLED ${c.name} ${JSON.stringify(c.args)}`).join('\n') : `YOU SAID: ${textOf(m)}`
  }).join('\n')
  return {
    system: `${system}\n\nTools:\n${toolList}\n\nAnswer with one JSON object: {"tool": "<name>", "args": {...}} to call a tool, or {"reply": "<text>"} when you are done.`,
    user: `${turn}\n\nWhat is your next step?`
  }
}

/** A tool's arguments as the model should fill them: each name with what it means (the grammar shows only their types). */
function argumentsOf (tool: Tool): string {
  type Props = { properties?: Record<string, { description?: string }> }
  const json = toJsonSchema(tool.schema as never) as Props & { anyOf?: Props[] }
  const properties = json.properties ?? json.anyOf?.[0]?.properties ?? {} // a tool narrowed to variants: they share their arguments
  const described = Object.entries(properties).map(([name, p]) => `${name} (${(p.description ?? name).replace(/\.$/, '')})`)
  return described.length === 0 ? '' : ` Arguments: ${described.join('; ')}`
}

function toMessage (text: string, id: string): AIMessage {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return new AIMessage({ content: text, invalid_tool_calls: [{ id, name: undefined, args: text, error: 'the answer is not JSON', type: 'invalid_tool_call' }] })
  }
  const p = parsed as { tool?: unknown, args?: unknown, reply?: unknown }
  if (typeof p.tool === 'string') {
    const args = typeof p.args === 'object' && p.args !== null && !Array.isArray(p.args) ? p.args as Record<string, unknown> : {}
    return new AIMessage({ content: '', tool_calls: [{ id, name: p.tool, args, type: 'tool_call' }] })
  }
  return new AIMessage(typeof p.reply === 'string' ? p.reply : text)
}
