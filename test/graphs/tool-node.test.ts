import { AIMessage, ToolMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConclaveToolNode } from '../../graphs/tool-node.ts'
import { DuplicateVoteError } from '../../src/core/errors.ts'

const throwing = (name: string, error: Error) => tool(async () => { throw error }, { name, description: `throws a ${error.name}`, schema: z.object({}) })
const calling = (name: string): { messages: AIMessage[] } => ({ messages: [new AIMessage({ content: '', tool_calls: [{ id: `call-${name}`, name, args: {}, type: 'tool_call' }] })] })

describe('ConclaveToolNode', () => {
  it('hands a ConclaveError back to the model as a tool message with status error', async () => {
    const node = new ConclaveToolNode([throwing('vote', new DuplicateVoteError('agent-2 already voted'))])
    const { messages } = await node.invoke(calling('vote')) as { messages: ToolMessage[] }
    expect(messages).toHaveLength(1)
    expect(messages[0]).toMatchObject({ status: 'error', name: 'vote', tool_call_id: 'call-vote' })
    expect(messages[0]?.content).toMatch(/^DuplicateVoteError: /)
  })

  it.each([new TypeError('undefined is not a function'), new RangeError('index out of range'), new Error('plain')])('ends the run on anything else: %s', async (bug) => {
    const node = new ConclaveToolNode([throwing('train', bug)])
    await expect(node.invoke(calling('train'))).rejects.toBe(bug)
  })

  it('returns a result as a successful tool message', async () => {
    const node = new ConclaveToolNode([tool(async () => 'done', { name: 'train', description: 'works', schema: z.object({}) })])
    const { messages } = await node.invoke(calling('train')) as { messages: ToolMessage[] }
    expect(messages).toEqual([expect.objectContaining({ status: 'success', name: 'train', content: 'done' })])
  })
})
