import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentChat } from '../../agents/agent-chat.ts'
import { agentDriver } from '../../agents/index.ts'
import { ObservedRun } from '../../src/federation/observer.ts'
import { runFederation } from '../../src/federation/run.ts'
import { createChatModel } from '../../src/llm/index.ts'
import { unloadGguf } from '../../src/llm/gguf.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'

/**
 * Chat with a real small model (Gemma 3 270M, in-process) about a finished run, loaded
 * read-only as `conclave chat --llm gguf:` loads it. Whoever words the answer (the model, or
 * the chat policy when the model's reply names nothing from the record), it must cite a
 * proposal id the ledger holds. Measured 2026-12-02 (seed 7, twice): Gemma called
 * round_result with round 2 (its arguments can only be rounds the record holds) and answered
 * with one of round 2's merged proposal ids, bare; on other questions its replies ("1", runs
 * of zeros) named nothing from the results and the chat policy answered.
 */
describe('chat on a real GGUF model (Gemma 3 270M)', () => {
  afterAll(async () => { await unloadGguf() })

  it('asked what round 2 merged, the answer cites a proposal id the ledger holds', async () => {
    const { stdout } = await promisify(execFile)('scripts/models/gemma.sh', [], { timeout: 600_000 })
    const model = stdout.trim().split('\n').at(-1) as string
    const dir = join(await tempDir('conclave-chat-gguf-'), 'run')
    await runFederation(smallConfig({ rounds: 2 }), { out: dir, driver: agentDriver() })
    const run = await ObservedRun.open(dir)
    try {
      const p = await run.member('agent-1')
      const chat = await AgentChat.create({ participant: p, ledger: run.ledger, nameOf: did => run.nameOf(did), plannedRounds: 2, sync: () => p.catchUp(), activity: () => ({ tools: [], toolCalls: {} }) },
        { model: await createChatModel(`gguf:${model}`, { seed: 7 }) })
      const answer = await chat.answer('what did round 2 merge?')
      const cited = [...p.state.proposals.keys()].filter(id => answer.includes(id.slice(0, 12)))
      expect(cited.length).toBeGreaterThan(0)
      expect(chat.answered.model + chat.answered.policy).toBe(1)
      const merged = p.state.rounds.get(2)?.checkpoint?.record.merged ?? []
      process.stderr.write(`gemma chat: answered by ${chat.answered.model === 1 ? 'the model' : 'the chat policy'}; cites ${cited.length} real proposal ids, ${cited.filter(id => merged.includes(id)).length} of round 2's ${merged.length} merged: ${answer}\n`)
    } finally {
      await run.close()
    }
  }, 900_000)
})
