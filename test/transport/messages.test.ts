import { describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { BusMessage } from '../../src/transport/index.ts'
import { createLocalBus } from '../../src/transport/local.ts'

const did = createIdentity(randomSecretKey()).did
const block = { id: 'a'.repeat(64), parents: ['b'.repeat(64), 'c'.repeat(64)], record: 'h.p.s', time: 1_700_000_000, pow: 12 }

describe('bus messages of the replicated ledger and of presence', () => {
  it('the local bus delivers block, want and hello messages as they were sent', async () => {
    const bus = createLocalBus()
    const seen: BusMessage[] = []
    await bus.subscribe('fed-1', m => { seen.push(m) })
    const sent: BusMessage[] = [{ kind: 'hello', did, name: 'agent-2' }, { kind: 'block', block }, { kind: 'want', block: block.id }]
    for (const m of sent) await bus.publish('fed-1', m)
    await bus.close()
    expect(seen).toEqual(sent)
  })

  it.each([
    ['a block with three parents', { kind: 'block', block: { ...block, parents: [block.id, block.id, block.id] } }],
    ['a block with a seq', { kind: 'block', block: { ...block, seq: 3 } }],
    ['a block without a pow', { kind: 'block', block: { ...block, pow: undefined } }],
    ['a block with a time of 0', { kind: 'block', block: { ...block, time: 0 } }],
    ['a block with an oversized record', { kind: 'block', block: { ...block, record: 'x'.repeat(20_000) } }],
    ['a want for something that is no block id', { kind: 'want', block: 'not a block!' }],
    ['a want with an extra field', { kind: 'want', block: block.id, from: 'agent-1' }],
    ['a hello from a DID that is not a did:key', { kind: 'hello', did: 'did:web:example.com', name: 'agent-1' }],
    ['a hello with an empty name', { kind: 'hello', did, name: '' }],
    ['a hello with a 65-character name', { kind: 'hello', did, name: 'n'.repeat(65) }],
    ['a hello with an extra field', { kind: 'hello', did, name: 'agent-1', round: 1 }]
  ])('refuses %s', async (_, message) => {
    expect(BusMessage.safeParse(message).success).toBe(false)
    const bus = createLocalBus()
    await expect(bus.publish('fed-1', message as BusMessage)).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await bus.close()
  })
})
