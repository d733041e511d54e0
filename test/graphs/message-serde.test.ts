import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { AIMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { JsonPlusSerializer } from '@langchain/langgraph-checkpoint'
import { messagesStateReducer } from '@langchain/langgraph'
import { MessageListSerializer } from '../../graphs/message-serde.ts'

const text = fc.string({ unit: 'binary', maxLength: 40 })
const message: fc.Arbitrary<BaseMessage> = fc.oneof(
  fc.record({ id: text, content: text }).map(m => new HumanMessage(m)),
  fc.record({ content: text }).map(m => new SystemMessage(m)),
  fc.record({ id: text, content: text, tool_call_id: text, status: fc.constantFrom('success' as const, 'error' as const) }).map(m => new ToolMessage(m)),
  fc.record({ id: text, content: text, calls: fc.array(fc.record({ id: text, name: text, args: fc.dictionary(text, fc.jsonValue()) }), { maxLength: 3 }), name: fc.option(text, { nil: undefined }) })
    .map(({ calls, ...m }) => new AIMessage({ ...m, tool_calls: calls }))
)

const bytes = async (serde: JsonPlusSerializer, value: unknown): Promise<string> => {
  const [type, data] = await serde.dumpsTyped(value)
  return `${type}:${Buffer.from(data).toString('utf8')}`
}

describe('MessageListSerializer: a conversation serialised message by message', () => {
  it('fuzz: writes the bytes JsonPlusSerializer writes, for a list first seen and again from what it kept, and reads back the same', async () => {
    const plain = new JsonPlusSerializer()
    const kept = new MessageListSerializer()
    await fc.assert(fc.asyncProperty(fc.array(message, { maxLength: 6 }), fc.array(message, { maxLength: 3 }), async (list, more) => {
      const expected = await bytes(plain, list)
      expect(await bytes(kept, list)).toBe(expected)
      // The next step's conversation: the same objects, and new ones after them.
      expect(await bytes(kept, [...list, ...more])).toBe(await bytes(plain, [...list, ...more]))
      expect(await kept.loadsTyped(...await kept.dumpsTyped(list))).toEqual(await plain.loadsTyped(...await plain.dumpsTyped(list)))
    }), { seed: 7, numRuns: 300 })
  })

  it('serialises a message again when a field it was serialised from was reassigned since, not the JSON it kept', async () => {
    const kept = new MessageListSerializer()
    const m = new AIMessage({ id: 'a', content: 'first' })
    await kept.dumpsTyped([m])
    m.content = 'second'
    expect(await bytes(kept, [m])).toBe(await bytes(new JsonPlusSerializer(), [m]))
    expect(await bytes(kept, [m])).toContain('second')
  })

  it('serialises a message again once LangGraph\'s messages reducer gave it an id in place (it was serialised without, as a pending write)', async () => {
    const kept = new MessageListSerializer()
    const tool = new ToolMessage({ content: 'done', tool_call_id: 'call-1' })
    await kept.dumpsTyped([tool])
    const [reduced] = messagesStateReducer([], [tool])
    expect(reduced).toBe(tool) // the same object, its id added
    expect(tool.id).toBeDefined()
    expect(await bytes(kept, [tool])).toBe(await bytes(new JsonPlusSerializer(), [tool]))
    expect(await bytes(kept, [tool])).toContain(tool.id as string)
  })

  it('leaves what is not a list of LangChain objects to JsonPlusSerializer (plain values, Maps, a mixed list)', async () => {
    const plain = new JsonPlusSerializer()
    const kept = new MessageListSerializer()
    for (const value of [[1, 2], { a: [new HumanMessage('x')] }, new Map([['k', 1]]), [new HumanMessage('x'), { plain: true }], [], 3, new Uint8Array([1, 2])]) {
      expect(await kept.dumpsTyped(value)).toEqual(await plain.dumpsTyped(value))
    }
  })
})
