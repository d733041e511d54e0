import { ToolMessage, type AIMessage, type BaseMessage, type ToolCall } from '@langchain/core/messages'
import type { StructuredToolInterface } from '@langchain/core/tools'
import type { Command, LangGraphRunnableConfig } from '@langchain/langgraph'
import { ToolNode } from '@langchain/langgraph/prebuilt'
import { ConclaveError } from '../src/core/errors.ts'

/**
 * LangGraph's ToolNode, but only Conclave's own errors go back to the model: a refusal it
 * can act on (no vote without an evaluation, a teacher out of budget) becomes a ToolMessage
 * with status 'error'. Anything else a tool throws (a TypeError, a RangeError: a bug) ends
 * the run, as bugs must surface; LangGraph's `handleToolErrors` would hand it to the model
 * as advice. Control errors (interrupts) pass through untouched, as they do upstream.
 * Each tool hears who decided its call (`configurable.decidedBy`): the name the graph gave
 * the message that made it (the model's spec, or `policy`).
 */
export class ConclaveToolNode extends ToolNode {
  constructor (tools: readonly StructuredToolInterface[]) {
    super([...tools], { handleToolErrors: false })
  }

  protected override async runTool (call: ToolCall, config: LangGraphRunnableConfig, state: unknown): Promise<ToolMessage | Command> {
    const decidedBy = authorOf(call, state)
    try {
      return await super.runTool(call, decidedBy === undefined ? config : { ...config, configurable: { ...config.configurable, decidedBy } }, state)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      return new ToolMessage({ status: 'error', name: call.name, tool_call_id: call.id ?? '', content: `${err.name}: ${err.message}` })
    }
  }
}

function authorOf (call: ToolCall, state: unknown): string | undefined {
  const messages = (state as { messages?: BaseMessage[] } | undefined)?.messages ?? []
  const made = messages.findLast(m => m.type === 'ai' && ((m as AIMessage).tool_calls ?? []).some(c => c.id === call.id))
  return made?.name
}
