import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { ConfigError } from '../src/core/errors.ts'
import accuracyTrend from './accuracy_trend.ts'
import anchor from './anchor.ts'
import distill from './distill.ts'
import { bindTool, isToolDefinition, type BoundTool, type ParticipantView, type ToolContext, type ToolDefinition } from './define.ts'
import evaluate from './evaluate.ts'
import federationStatus from './federation_status.ts'
import listProposals from './list_proposals.ts'
import publish from './publish.ts'
import readLedger from './read_ledger.ts'
import readVotes, { readVotesNow } from './read_votes.ts'
import reputation from './reputation.ts'
import roundResult, { roundResultNow } from './round_result.ts'
import train from './train.ts'
import vote from './vote.ts'

export { bindTool, defineTool, short, type BoundTool, type ParticipantView, type ToolContext, type ToolDefinition } from './define.ts'

/** The protocol's own tools, in the order an agent meets them. */
export const PROTOCOL_TOOLS: readonly ToolDefinition[] = [distill, train, publish, anchor, evaluate, vote, listProposals, reputation, readLedger, federationStatus] as ToolDefinition[]

/** What an agent answers researchers with: tools that only read the record, so every answer rests on it. */
export const CHAT_TOOLS: readonly ToolDefinition[] = [federationStatus, readVotes, roundResult, accuracyTrend, reputation, listProposals, readLedger] as ToolDefinition[]

/** CHAT_TOOLS whose arguments can only be the proposal ids, rounds and members the record holds now (for models under a schema). */
export function chatToolsNow (state: ParticipantView['state'], members: readonly string[]): ToolDefinition[] {
  return CHAT_TOOLS.map(t => t === readVotes ? readVotesNow(state, members) : t === roundResult ? roundResultNow(state) : t)
}

/** A tool an agent can be given: a Conclave definition, or a plain LangChain tool. */
export type AgentTool = ToolDefinition | StructuredToolInterface

/**
 * Loads plugin tools named in a config: each entry is a module path (relative to `base`)
 * whose default export is a `defineTool(...)` result or a LangChain tool (or an array of them).
 */
export async function loadPluginTools (modules: readonly string[], base: string): Promise<AgentTool[]> {
  const tools: AgentTool[] = []
  for (const module of modules) {
    const path = isAbsolute(module) ? module : resolve(base, module)
    let loaded: { default?: unknown }
    try {
      loaded = await import(pathToFileURL(path).href) as { default?: unknown }
    } catch (err) {
      throw new ConfigError(`plugin tool ${module}: cannot load ${path}: ${(err as Error).message}`)
    }
    const exported = Array.isArray(loaded.default) ? loaded.default : [loaded.default]
    for (const candidate of exported) {
      if (isToolDefinition(candidate) || isLangChainTool(candidate)) tools.push(candidate)
      else throw new ConfigError(`plugin tool ${module}: its default export is neither defineTool(...) nor a LangChain tool`)
    }
  }
  return tools
}

function isLangChainTool (value: unknown): value is StructuredToolInterface {
  const v = value as Partial<StructuredToolInterface> | null
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.invoke === 'function' && v.schema !== undefined
}

/** Binds every tool to one agent, with what it accepts now where it says; names must be unique. */
export function bindTools (tools: readonly AgentTool[], context: ToolContext): BoundTool[] {
  const bound = tools.map((t): BoundTool => {
    if (!isToolDefinition(t)) return { tool: t }
    const { legal, events } = t
    return { tool: bindTool(t, context), ...(legal === undefined ? {} : { legal: () => legal(context) }), ...(events === undefined ? {} : { events }) }
  })
  const seen = new Set<string>()
  for (const { tool: t } of bound) {
    if (seen.has(t.name)) throw new ConfigError(`two tools are named ${t.name}`)
    seen.add(t.name)
  }
  return bound
}
