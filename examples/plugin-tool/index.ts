/**
 * An example plugin tool. A researcher's tool is one module whose default export is a
 * `defineTool(...)` (or a plain LangChain tool); naming the module in the config gives it
 * to every agent:
 *
 *   agent:
 *     tools: [./examples/plugin-tool/index.ts]
 *
 * This one tallies the ledger by record type and issuer, so an agent can see who has been
 * active before it decides. `when` tells the model in which situation the tool helps;
 * `events` names the events that situation arises in, and each such event's message names
 * the tool to the model (which still decides whether to call it).
 */
import { z } from 'zod'
import { peekRecord } from '../../src/identity/index.ts'
import { defineTool } from '../../tools/index.ts'

export default defineTool({
  name: 'ledger_stats',
  description: 'Count the records on the ledger by type, and by member for one type.',
  when: 'you want to know who has been proposing or voting before you judge a proposal (type "vote" or "proposal").',
  events: ['proposal'],
  schema: z.object({
    type: z.enum(['proposal', 'vote', 'decision', 'checkpoint']).describe('Which record type to break down by member.')
  }),
  run: async ({ type }, { ledger, nameOf }) => {
    const byType: Record<string, number> = {}
    const byMember: Record<string, number> = {}
    for await (const block of ledger.blocks()) {
      const { issuer, record } = peekRecord(block.record)
      if (record === null) continue
      byType[record.type] = (byType[record.type] ?? 0) + 1
      if (record.type === type && issuer !== null) byMember[nameOf(issuer)] = (byMember[nameOf(issuer)] ?? 0) + 1
    }
    return { byType, [`${type}sByMember`]: byMember }
  }
})
