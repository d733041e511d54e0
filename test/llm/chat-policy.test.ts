import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages'
import { describe, expect, it } from 'vitest'
import { chatPolicyStep, intentOf } from '../../src/llm/chat-policy.ts'

describe('the chat policy', () => {
  it.each([
    ["why did you reject agent-3's update in round 1?", { tool: 'read_votes', args: { round: 1, proposer: 'agent-3' } }],
    ['why 0bc4b1293921?', { tool: 'read_votes', args: { proposal: '0bc4b1293921' } }],
    ['how is the accuracy trending?', { tool: 'accuracy_trend', args: {} }],
    ['who has the best reputation?', { tool: 'reputation', args: {} }],
    ['what did round 2 merge?', { tool: 'round_result', args: { round: 2 } }],
    ['which tools do you have?', { tool: 'my_tools', args: {} }],
    ['what is your teacher spend?', { tool: 'federation_status', args: {}, topic: 'teacher' }],
    ['has the run ended?', { tool: 'federation_status', args: {} }],
    ['why did you vote as you did in round 0?', { tool: 'read_votes', args: {} }],
    ['what did round 99999999999999999999 merge?', { tool: 'round_result', args: {} }],
    ['what is the meaning of life?', undefined]
  ])('%s → %j', (question, intent) => {
    expect(intentOf(question)).toEqual(intent)
  })

  it('words only the result of its own call: a model\'s call of the same tool with other arguments is not its answer', () => {
    const question = new HumanMessage('what did round 2 merge?')
    const theirs = new AIMessage({ content: '', tool_calls: [{ id: 'model-1', name: 'round_result', args: { round: 20190110 }, type: 'tool_call' }] })
    const theirResult = new ToolMessage({ tool_call_id: 'model-1', name: 'round_result', content: JSON.stringify({ round: 20190110, status: 'not started', model: null, merged: [], rejected: [], undecided: [] }) })
    expect(chatPolicyStep([question, theirs, theirResult])).toEqual({ tool: 'round_result', args: { round: 2 } })
    const mine = new AIMessage({ content: '', tool_calls: [{ id: 'policy-1', name: 'round_result', args: { round: 2 }, type: 'tool_call' }] })
    const myResult = new ToolMessage({ tool_call_id: 'policy-1', name: 'round_result', content: JSON.stringify({ round: 2, status: 'merged', model: { cid: 'b', sha256: 'ab'.repeat(32) }, merged: [{ proposal: 'p'.repeat(20), proposer: 'agent-1' }], rejected: [], undecided: [] }) })
    expect(chatPolicyStep([question, theirs, theirResult, mine, myResult])).toEqual({ reply: `Round 2 merged 1 update into the global model ${'ab'.repeat(6)}: agent-1's (${'p'.repeat(12)}). Rejected: none.` })
  })
})
