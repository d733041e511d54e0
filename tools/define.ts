import { tool, type StructuredToolInterface } from '@langchain/core/tools'
import { z } from 'zod'
import type { Did } from '../src/core/records.ts'
import type { Participant } from '../src/federation/participant.ts'
import type { FederationState, ProposalEntry } from '../src/federation/state.ts'
import type { Ledger } from '../src/ledger/index.ts'
import { EVENT_TYPES, type AgentEvent } from '../src/llm/events.ts'

/**
 * What a tool sees of its agent's participant: the protocol actions (each enforces the
 * protocol whatever the model asks) and the reads a model needs to choose one; not its
 * inbox, timers, lifecycle or the state's write side.
 */
export type ParticipantView = Pick<Participant,
  | 'name' | 'did' | 'draft' | 'globalModel' | 'undistilled' | 'distillable' | 'teacherBudget' | 'teacherUse' | 'evaluation' | 'myVote' | 'score' | 'hasVoted' | 'hasProposed'
  | 'distill' | 'train' | 'publishDraft' | 'proposeDraft' | 'evaluate' | 'vote'> & {
  readonly state: Readonly<Pick<FederationState, 'charter' | 'global' | 'members' | 'required' | 'rounds' | 'proposals' | 'reputation' | 'currentRound' | 'judges'>>
}

/** What a tool may reach: a view of the agent's protocol participant, the ledger it reads, and names for DIDs. */
export interface ToolContext {
  participant: ParticipantView
  ledger: Ledger
  /** Human names of the members (`agent-2`), for readable tool output. */
  nameOf: (did: Did) => string
  /** Rounds the run was configured for, when known: a run past them has ended. */
  plannedRounds?: number
  /** Aborted when the agent is stopped. */
  signal?: AbortSignal
  /** Runs each call of a tool: the agent's own hold on what it does (a paused agent refuses them). @default runs it */
  guard?: <T>(call: () => Promise<T>) => Promise<T>
}

/** About the one call a tool is running: who decided it (the model's spec, or `policy`), as the graph recorded. */
export interface ToolCallInfo { decidedBy?: string }

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
  /** When the model should call it ("before voting on a proposal from a member with rejected updates"): shown to the model with the description. */
  when?: string
  /** The events `when` fits (a peer's `proposal`, a `round-open`): the event's message names the tool to the model, which still decides whether to call it. @default none */
  events?: ReadonlyArray<AgentEvent['type']>
  schema: S
  run: (input: z.output<S>, context: ToolContext, call: ToolCallInfo) => Promise<unknown>
  /**
   * The calls the tool accepts now, read from its agent's state: none (`[]`: not now), or
   * one schema per kind of call, narrower than `schema` (the real ids as enums, the accepts
   * the judgement mode allows). Absent: any call that fits `schema`. The graph offers the
   * model only these and checks every call against them, so a small model answering under
   * a grammar cannot make an illegal one; the protocol still enforces its rules itself.
   */
  legal?: (context: ToolContext) => Array<z.ZodObject>
}

export const ToolName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'tool names are snake_case')

/** Declares a tool; the plugin API (see examples/plugin-tool/). */
export function defineTool<S extends z.ZodObject> (definition: ToolDefinition<S>): ToolDefinition<S> {
  ToolName.parse(definition.name)
  for (const [field, schema] of Object.entries(definition.schema.shape)) {
    if ((schema as z.ZodType).description === undefined) throw new TypeError(`tool ${definition.name}: field ${field} has no .describe()`)
  }
  for (const type of definition.events ?? []) {
    if (!EVENT_TYPES.includes(type)) throw new TypeError(`tool ${definition.name}: ${String(type)} is not an event (${EVENT_TYPES.join(', ')})`)
  }
  return definition
}

export function isToolDefinition (value: unknown): value is ToolDefinition {
  const v = value as Partial<ToolDefinition> | null
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.run === 'function' && v.schema instanceof z.ZodObject
}

/** Binds a definition to one agent's context as a LangChain tool. */
export function bindTool (definition: ToolDefinition, context: ToolContext): StructuredToolInterface {
  return tool(async (input: Record<string, unknown>, config?: { configurable?: { decidedBy?: unknown } }) => {
    context.signal?.throwIfAborted() // a stopped agent takes no further action
    const decidedBy = config?.configurable?.decidedBy
    const call = async (): Promise<string> => JSON.stringify(await definition.run(definition.schema.parse(input), context, { decidedBy: typeof decidedBy === 'string' ? decidedBy : undefined }))
    return context.guard === undefined ? call() : context.guard(call)
  }, {
    name: definition.name,
    description: definition.when === undefined ? definition.description : `${definition.description} Use it when ${definition.when.replace(/^use it when /i, '')}`,
    schema: definition.schema
  }) as unknown as StructuredToolInterface
}

/** A tool as its agent may call it now (graphs/participant.ts): the LangChain tool, its legal variants where it narrows them, and the events it fits where it says. */
export interface BoundTool { tool: StructuredToolInterface, legal?: () => Array<z.ZodObject>, events?: ReadonlyArray<AgentEvent['type']> }

/** Proposals that await my vote: undecided, I am one of their judges (every peer, or the committee drawn), not voted on by me. */
export function awaitingMyVote (participant: ParticipantView): ProposalEntry[] {
  return [...participant.state.proposals.values()].filter(e => e.decision === undefined && participant.state.judges(e.block).includes(participant.did) && !participant.hasVoted(e.block))
}

/** Short form of a block id for humans and small models. */
export const short = (id: string): string => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
