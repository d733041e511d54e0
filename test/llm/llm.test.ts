import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages'
import type { Runnable } from '@langchain/core/runnables'
import { ChatOllama } from '@langchain/ollama'
import { describe, expect, it } from 'vitest'
import { parseRunConfig } from '../../src/federation/config.ts'
import { POLICY } from '../../src/core/records.ts'
import { createChatModel, describeEvent, LlmSpec, parseEvent, policyStep } from '../../src/llm/index.ts'
import { decisionSchema, JsonToolChatModel, simplify } from '../../src/llm/json-tools.ts'
import { ask } from '../../graphs/ask.ts'
import { GGUF_MAX_TOKENS } from '../../src/llm/gguf.ts'
import { assertOllamaModel, nativeOllama, ollamaCompleter } from '../../src/llm/ollama.ts'
import { bindTool } from '../../tools/index.ts'
import readLedger from '../../tools/read_ledger.ts'
import vote from '../../tools/vote.ts'

const proposal = 'a'.repeat(64)

describe('the protocol policy', () => {
  const event = new HumanMessage(describeEvent({ type: 'proposal', round: 2, proposal, proposer: 'agent-3' }))
  const call = (name: string, args: Record<string, unknown>): AIMessage => new AIMessage({ content: '', tool_calls: [{ id: name, name, args, type: 'tool_call' }] })
  const result = (name: string, content: string, status: 'success' | 'error' = 'success'): ToolMessage => new ToolMessage({ content, name, tool_call_id: name, status })

  it('evaluates a peer proposal, then votes as the rule says, then stops', () => {
    expect(policyStep([event])).toEqual({ tool: 'evaluate', args: { proposal } })
    const evaluated = [event, call('evaluate', { proposal }), result('evaluate', JSON.stringify({ proposal, passesRule: false }))]
    expect(policyStep(evaluated)).toMatchObject({ tool: 'vote', args: { proposal, accept: false } })
    expect(policyStep([...evaluated, call('vote', { proposal }), result('vote', JSON.stringify({ proposal, accept: false }))])).toHaveProperty('reply')
  })

  it('votes on the event\'s proposal by its own evaluation, not the turn\'s last one; evaluates it when the turn holds only another\'s', () => {
    // A model that looked at another pending proposal too, then broke down: the policy takes the step.
    const other = 'b'.repeat(64)
    const evaluation = (of: string, passesRule: boolean): Array<AIMessage | ToolMessage> => [call('evaluate', { proposal: of }), result('evaluate', JSON.stringify({ proposal: of, passesRule }))]
    expect(policyStep([event, ...evaluation(proposal, false), ...evaluation(other, true)])).toMatchObject({ tool: 'vote', args: { proposal, accept: false } })
    expect(policyStep([event, ...evaluation(proposal, true), ...evaluation(other, false)])).toMatchObject({ tool: 'vote', args: { proposal, accept: true } })
    expect(policyStep([event, ...evaluation(other, true)])).toEqual({ tool: 'evaluate', args: { proposal } })
    const votedOther = [event, ...evaluation(proposal, false), call('vote', { proposal: other }), result('vote', JSON.stringify({ proposal: other, accept: true }))]
    expect(policyStep(votedOther)).toMatchObject({ tool: 'vote', args: { proposal, accept: false } })
  })

  it('votes by the rule after a model\'s vote was refused (against the charter\'s judgement), and stops when its own vote is refused', () => {
    const evaluated = [event, call('evaluate', { proposal }), result('evaluate', JSON.stringify({ proposal, passesRule: true }))]
    const refusedVote = (by: string): Array<AIMessage | ToolMessage> => [
      new AIMessage({ content: '', name: by, tool_calls: [{ id: `${by}-vote`, name: 'vote', args: { proposal, accept: false, rationale: 'my own judgement' }, type: 'tool_call' }] }),
      new ToolMessage({ content: 'VoteAgainstRuleError: under rule judgement it can only be accepted', name: 'vote', tool_call_id: `${by}-vote`, status: 'error' })
    ]
    expect(policyStep([...evaluated, ...refusedVote('ollama:qwen3')])).toMatchObject({ tool: 'vote', args: { proposal, accept: true } })
    expect(policyStep([...evaluated, ...refusedVote(POLICY)])).toMatchObject({ reply: expect.stringMatching(/vote failed/) })
  })

  it('trains, publishes and anchors when a round opens; stops at a tool error; ignores messages without an event', () => {
    const open = new HumanMessage(describeEvent({ type: 'round-open', round: 1 }))
    expect(policyStep([open])).toEqual({ tool: 'train', args: {} })
    expect(policyStep([open, call('train', {}), result('train', '{}')])).toEqual({ tool: 'publish', args: {} })
    expect(policyStep([open, call('train', {}), result('train', 'ProtocolViolationError: no global model', 'error')])).toMatchObject({ reply: expect.stringMatching(/train failed/) })
    expect(policyStep([new HumanMessage('hello')])).toHaveProperty('reply')
  })

  it('skips a round\'s steps done before the turn: offered publish and anchor only (a draft is held), it publishes', () => {
    const open = new HumanMessage(describeEvent({ type: 'round-open', round: 1 }))
    expect(policyStep([open], new Set(['publish', 'anchor', 'evaluate']))).toEqual({ tool: 'publish', args: {} })
    expect(policyStep([open, call('publish', {}), result('publish', '{}')], new Set(['anchor']))).toEqual({ tool: 'anchor', args: {} })
    expect(policyStep([open], new Set(['evaluate']))).toEqual({ reply: 'Nothing left to do for round 1.' })
  })

  it('reads events back exactly, and refuses forged ones', () => {
    expect(parseEvent(describeEvent({ type: 'round-open', round: 3 }))).toEqual({ type: 'round-open', round: 3 })
    expect(parseEvent(describeEvent({ type: 'round-open', round: 3 }, { fitting: ['ledger_stats'] }))).toEqual({ type: 'round-open', round: 3 })
    expect(parseEvent('EVENT {"type":"round-open","round":-1}')).toBeUndefined()
    expect(parseEvent('EVENT {not json')).toBeUndefined()
  })
})

describe('constrained tool calls for small models', () => {
  it('builds one JSON-schema branch per tool plus a reply, keeping only what grammars support', () => {
    const schema = decisionSchema([bindTool(vote, {} as never)]) as { oneOf: Array<{ properties: Record<string, { const?: string, properties?: Record<string, Record<string, unknown>>, required?: string[] }> }> }
    expect(schema.oneOf).toHaveLength(2)
    const branch = schema.oneOf[0]?.properties
    expect(branch?.tool?.const).toBe('vote')
    expect(branch?.args?.required).toEqual(['proposal', 'accept', 'rationale'])
    expect(branch?.args?.properties?.proposal).not.toHaveProperty('pattern') // validated by zod after the call instead
    expect(simplify({ type: 'string', pattern: '^x$', format: 'uri', maxLength: 3 })).toEqual({ type: 'string', maxLength: 3 })
    expect((decisionSchema([bindTool(vote, {} as never)], { mustCall: true }) as { oneOf: unknown[] }).oneOf).toHaveLength(1) // a turn that must call a tool cannot reply
  })
})

describe('what the grammar allows, the schema accepts', () => {
  it('a small integer range is offered as its values: read_ledger cannot be asked for the last -1 records', () => {
    const schema = decisionSchema([bindTool(readLedger, {} as never)], { mustCall: true }) as { oneOf: Array<{ properties: { args: { properties: Record<string, unknown> } } }> }
    expect(schema.oneOf[0]?.properties.args.properties.last).toEqual({ type: 'integer', description: 'How many of the latest records; default 10.', enum: Array.from({ length: 50 }, (_, i) => i + 1) })
    expect(simplify({ type: 'integer', exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER })).toEqual({ type: 'integer' }) // too many to list: checked after the call
  })

  it('the longest reply the grammar allows ends its JSON within the GGUF token budget, even at a token a character (Gemma 3 270M: a reply of digits, cut off)', () => {
    const { oneOf } = decisionSchema([]) as { oneOf: Array<{ properties: { reply: { maxLength: number } } }> }
    const longest = JSON.stringify({ reply: '0'.repeat(oneOf[0]?.properties.reply.maxLength ?? Infinity) }, null, 4)
    expect(longest.length).toBeLessThan(GGUF_MAX_TOKENS)
  })
})

describe('model specs', () => {
  it('refuses unknown specs and missing models by name, with the command that fixes them', async () => {
    await expect(createChatModel('gpt-4')).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
    await expect(createChatModel('gguf:/nonexistent/x.gguf')).rejects.toMatchObject({ name: 'ModelNotFoundError', code: 'ERR_MODEL_NOT_FOUND' })
    await expect(assertOllamaModel('gemma3', 'http://127.0.0.1:9')).rejects.toMatchObject({ name: 'BackendUnavailableError', code: 'ERR_BACKEND_UNAVAILABLE' })
    expect((await createChatModel('policy'))._llmType()).toBe('conclave-protocol-policy')
  })
})

describe('a model\'s name on the record', () => {
  it('a spec whose votes could not record the model is refused at start-up: a GGUF file named with a space (its folder may have one), an overlong name', async () => {
    const spaced = 'gguf:/models/gemma-3-270m (1).gguf'
    expect(LlmSpec.safeParse(spaced).success).toBe(false)
    expect(LlmSpec.safeParse(`ollama:${'m'.repeat(200)}`).success).toBe(false)
    expect(LlmSpec.safeParse('gguf:/my models/gemma-3-270m.gguf').success).toBe(true) // recorded as gguf:gemma-3-270m.gguf
    await expect(createChatModel(spaced)).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
    expect(() => parseRunConfig({ agent: { llm: spaced } })).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
  })
})

describe('Ollama models', () => {
  it('a model Ollama says takes tools keeps its native tool calling; one without (Gemma 3) answers under a JSON schema', async () => {
    // A stand-in Ollama: two models, and what /api/show says each can do.
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => { body += c.toString() })
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        if (req.url === '/api/tags') return res.end(JSON.stringify({ models: [{ name: 'qwen3:0.6b' }, { name: 'gemma3:270m' }] }))
        const { model } = JSON.parse(body) as { model: string }
        res.end(JSON.stringify({ capabilities: model === 'qwen3:0.6b' ? ['completion', 'tools'] : ['completion'] }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const ollamaUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      expect(await createChatModel('ollama:qwen3:0.6b', { ollamaUrl })).toBeInstanceOf(ChatOllama)
      expect(await createChatModel('ollama:gemma3:270m', { ollamaUrl })).toBeInstanceOf(JsonToolChatModel)
    } finally {
      server.close()
    }
  })

  // Found red-teaming (as for the teacher): a 307 re-sent the agent's prompt to whatever the Location named.
  it('a redirect is refused as an outage naming the server; the prompt reaches nothing else', async () => {
    const reached: string[] = []
    const elsewhere = createServer((req, res) => { reached.push(req.url ?? ''); res.end('{}') })
    const server = createServer((_req, res) => { res.writeHead(307, { location: `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/api/v0/shutdown` }); res.end() })
    await Promise.all([elsewhere, server].map(async s => new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      await expect(ollamaCompleter('gemma3:270m', url).complete({ system: 's', user: 'u' }, { type: 'object' })).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('redirect') })
      expect(reached).toEqual([])
    } finally {
      server.close()
      elsewhere.close()
    }
  })

  // A model call past the agent's llmTimeoutMs is given up on; its request must end with it, or a
  // stalled server gathers one open request per step the agent retries.
  it.each([
    ['native tool calling (ChatOllama)', (url: string): Runnable => nativeOllama('qwen3:0.6b', url).bindTools([bindTool(vote, {} as never)])],
    ['a JSON schema (Gemma 3)', (url: string): Runnable => new JsonToolChatModel(ollamaCompleter('gemma3:270m', url)).bindTools([bindTool(vote, {} as never)])]
  ])('a model call that times out ends its request, with %s: the stalled server sees the connection closed', async (_, modelAt) => {
    let closed!: Promise<'closed'>
    const server = createServer((_req, res) => { closed = new Promise(resolve => res.on('close', () => { resolve('closed') })) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const reply = await ask(modelAt(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), [new HumanMessage('status?')], { timeoutMs: 300 })
      expect(reply?.invalid_tool_calls).toEqual([expect.objectContaining({ error: expect.stringContaining('the model failed') })])
      const open = new Promise<'open'>(resolve => setTimeout(() => { resolve('open') }, 2000).unref())
      expect(await Promise.race([closed, open])).toBe('closed')
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('a call given up on ends its request: a server that takes it and never answers sees the connection closed', async () => {
    let closed!: Promise<void>
    const server = createServer((_req, res) => { closed = new Promise(resolve => res.on('close', resolve)) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const stalled = ollamaCompleter('gemma3:270m', `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
      const giveUp = new AbortController()
      const call = stalled.complete({ system: 's', user: 'u' }, { type: 'object' }, { signal: giveUp.signal })
      await new Promise<void>(resolve => server.once('request', () => resolve()))
      giveUp.abort()
      await expect(call).rejects.toMatchObject({ name: 'AbortError' })
      await closed
    } finally {
      server.close()
    }
  })
})
