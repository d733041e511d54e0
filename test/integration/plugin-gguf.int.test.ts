import { execFile } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { AIMessage, BaseMessage, ToolMessage } from '@langchain/core/messages'
import { afterAll, describe, expect, it } from 'vitest'
import { ParticipantAgent } from '../../agents/index.ts'
import { FileCheckpointSaver } from '../../graphs/file-checkpointer.ts'
import { consoleLogger } from '../../src/core/logger.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { parseEvent } from '../../src/llm/events.ts'
import { unloadGguf } from '../../src/llm/gguf.ts'
import { textOf } from '../../src/llm/policy.ts'
import { loadPluginTools } from '../../tools/index.ts'

/**
 * The example plugin (examples/plugin-tool: `ledger_stats`, "use it when you want to know
 * who has been proposing or voting before you judge a proposal") given to an agent run by
 * Gemma 3 270M. A peer's proposal is the event it fits (its `events`), and that event's
 * message names it; the step's grammar offers it beside `evaluate` and the read-only tools.
 * The model must choose to call it: nothing in code makes the call, and a call the policy
 * made (it never calls a plugin) would not count. With the tool only listed, Gemma went
 * straight to `evaluate` on both proposals, and this test failed.
 */
describe('a plugin tool on a real GGUF model (Gemma 3 270M)', () => {
  afterAll(async () => { await unloadGguf() })

  it('judging a peer\'s proposal, the model calls ledger_stats by its own decision, and gets the tally', async () => {
    const { stdout } = await promisify(execFile)('scripts/models/gemma.sh', [], { timeout: 600_000 })
    const model = stdout.trim().split('\n').at(-1) as string
    const plugins = await loadPluginTools(['examples/plugin-tool/index.ts'], process.cwd())

    // Only agent-1 runs on Gemma (the slow part); its two peers run the protocol policy and propose.
    const config = parseRunConfig({ agents: 3, rounds: 1, seed: 3, quorum: 2, ledger: { kind: 'tangle', difficulty: 4 }, task: { kind: 'classify', trainLimit: 300, testLimit: 200 } })
    let gemma: { dir: string, did: string } | undefined
    const sim = await Simulation.create(config, {
      dir: await mkdtemp(join(tmpdir(), 'conclave-plugin-gguf-')),
      driver: async (participant, context) => {
        if (participant.name !== 'agent-1') return ParticipantAgent.create(participant, context, { plugins })
        gemma = { dir: context.dir, did: participant.did }
        return ParticipantAgent.create(participant, context, { plugins, llm: `gguf:${model}`, seed: 3, logger: consoleLogger })
      }
    })
    try {
      await sim.charter()
      await sim.round(1)
      const agent = sim.drivers[0] as ParticipantAgent
      process.stderr.write(`gguf plugin agent: ${JSON.stringify(agent.activity())}\n`)

      // From its memory: on a proposal's turn it called ledger_stats, the model being the step's author, and the tool answered with the tally.
      const saved = await (await FileCheckpointSaver.open(join(gemma?.dir as string, 'memory.json'))).getTuple({ configurable: { thread_id: gemma?.did } })
      const messages = (saved?.checkpoint.channel_values.messages ?? []) as BaseMessage[]
      let event: ReturnType<typeof parseEvent>
      const calls: Array<{ event?: string, by?: string, id?: string }> = []
      for (const m of messages) {
        if (m.type === 'human') event = parseEvent(textOf(m))
        if (m.type === 'ai') for (const c of (m as AIMessage).tool_calls ?? []) if (c.name === 'ledger_stats') calls.push({ event: event?.type, by: m.name, id: c.id })
      }
      const onProposal = calls.filter(c => c.event === 'proposal')
      expect(onProposal.length).toBeGreaterThanOrEqual(1)
      expect(calls.every(c => c.by === 'gguf:gemma-3-270m-q4_k_m.gguf')).toBe(true)
      const answered = messages.filter((m): m is ToolMessage => m.type === 'tool' && onProposal.some(c => c.id === (m as ToolMessage).tool_call_id))
      expect(answered.length).toBe(onProposal.length)
      for (const result of answered) {
        expect(result.status).not.toBe('error')
        expect(JSON.parse(textOf(result)).byType.proposal).toBeGreaterThanOrEqual(1)
      }
      // and every one of its calls was the model's decision, none the policy's
      expect(agent.activity().decisions.ledger_stats).toEqual({ model: calls.length, policy: 0 })
      // the plugin did not take the place of the duty: the model's agent still voted on each peer's proposal
      const me = sim.participants[0]
      const peers = [...(me?.state.proposals.values() ?? [])].filter(e => e.signed.issuer !== me?.did)
      expect(peers.length).toBeGreaterThan(0)
      expect(peers.every(e => e.votes.has(me?.did as string))).toBe(true)
    } finally {
      await sim.close()
    }
  }, 1_800_000)
})
