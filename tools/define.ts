import { tool, type StructuredToolInterface } from '@langchain/core/tools'
import { z } from 'zod'
import type { Did } from '../src/core/records.ts'
import type { Participant } from '../src/federation/participant.ts'
import type { FederationState } from '../src/federation/state.ts'
import type { Ledger } from '../src/ledger/index.ts'

/**
 * What a tool sees of its agent's participant: the protocol actions (each enforces the
 * protocol whatever the model asks) and the reads a model needs to choose one; not its
 * inbox, timers, lifecycle or the state's write side.
 */
export type ParticipantView = Pick<Participant,
  | 'name' | 'did' | 'draft' | 'globalModel' | 'undistilled' | 'teacherBudget' | 'evaluation' | 'myVote'
  | 'distill' | 'train' | 'publishDraft' | 'proposeDraft' | 'evaluate' | 'vote'> & {
  readonly state: Readonly<Pick<FederationState, 'charter' | 'global' | 'members' | 'required' | 'rounds' | 'proposals' | 'reputation' | 'currentRound' | 'judges'>>
}

/** What a tool may reach: a view of the agent's protocol participant, the ledger it reads, and names for DIDs. */
export interface ToolContext {
  participant: ParticipantView
  ledger: Ledger
  /** Human names of the members (`agent-2`), for readable tool output. */
  nameOf: (did: Did) => string
  /** Aborted when the agent is stopped. */
  signal?: AbortSignal
}

/**
 * A Conclave tool: a name, a description the model reads, a zod schema with `.describe()` on
 * every field, and `run`, a thin adapter over `src/`. It becomes a LangChain tool bound to
 * one agent's context; what `run` returns goes back to the model as JSON. A ConclaveError it
 * throws (a refusal) goes back as a tool message with status 'error'; any other error is a
 * bug and ends the agent's run (graphs/tool-node.ts).
 */
export interface ToolDefinition<S extends z.ZodObject = z.ZodObject> {
  name: string
  description: string
  schema: S
  run: (input: z.output<S>, context: ToolContext) => Promise<unknown>
}

export const ToolName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'tool names are snake_case')

/** Declares a tool; the plugin API (see examples/plugin-tool/). */
export function defineTool<S extends z.ZodObject> (definition: ToolDefinition<S>): ToolDefinition<S> {
  ToolName.parse(definition.name)
  for (const [field, schema] of Object.entries(definition.schema.shape)) {
    if ((schema as z.ZodType).description === undefined) throw new TypeError(`tool ${definition.name}: field ${field} has no .describe()`)
  }
  return definition
}

export function isToolDefinition (value: unknown): value is ToolDefinition {
  const v = value as Partial<ToolDefinition> | null
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.run === 'function' && v.schema instanceof z.ZodObject
}

/** Binds a definition to one agent's context as a LangChain tool. */
export function bindTool (definition: ToolDefinition, context: ToolContext): StructuredToolInterface {
  return tool(async (input: Record<string, unknown>) => {
    context.signal?.throwIfAborted() // a stopped agent takes no further action
    return JSON.stringify(await definition.run(definition.schema.parse(input), context))
  }, {
    name: definition.name,
    description: definition.description,
    schema: definition.schema
  }) as unknown as StructuredToolInterface
}

/** Short form of a block id for humans and small models. */
export const short = (id: string): string => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
