import { execFile, execFileSync } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { promisify } from 'node:util'
import { BIN, connect, kuboNode, stop, type KuboNode } from './kubo-nodes.ts'
import { reportsOf, start, threeMembers, until, type Member } from './members.ts'
import { uniqueName } from './synapse.ts'

/**
 * The README's deployment across machines: each member its own kubo node, peered with the
 * others', so a member fetches the charter's model and its peers' Δw from their nodes. Before
 * the store asked its peers, every read was local only: no member but the founder could even
 * load the initial model.
 */
describe('a federation whose members each have their own kubo node (Synapse + three kubo nodes)', () => {
  it('three member processes, each on its own node, judge each other\'s updates and end at one model that every copy audits', { timeout: 600_000 }, async () => {
    const nodes: KuboNode[] = []
    let running: Member[] = []
    try {
      for (let i = 0; i < 3; i++) nodes.push(await kuboNode())
      for (const [i, a] of nodes.entries()) for (const b of nodes.slice(i + 1)) connect(a, b)
      const root = await mkdtemp(join(tmpdir(), 'conclave-own-nodes-'))
      const configs = await threeMembers(root, uniqueName('nodes'), 'autopilot', { kubo: nodes.map(n => n.url) })
      running = configs.map(c => start(c))
      const reports = await until('every member writes its report', async () => reportsOf(root), running)
      for (const report of reports) {
        expect(report.rounds.map(r => r.round)).toEqual([1, 2])
        expect(report.audit.ok).toBe(true)
        // The two honest updates fetched from their proposers' nodes and accepted; the sign-flipped one rejected.
        expect(report.rounds.map(r => [r.accepts, r.rejects])).toEqual([[2, 1], [2, 1]])
      }
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)

      // Later, alone: the others' machines are gone and its node collected its garbage. Its
      // copy must still prove the run: the peers' Δw it judged and merged, and the charter's
      // model, are pinned on its own node (before, they were fetched unpinned, and gc dropped them).
      for (const n of nodes.slice(0, 2)) await stop(n)
      const [, , own] = nodes as [KuboNode, KuboNode, KuboNode]
      execFileSync(BIN, ['repo', 'gc'], { env: own.env, stdio: 'ignore' })
      // A failed audit exits 1: its report is on stdout all the same.
      const { stdout } = await promisify(execFile)('node_modules/.bin/node', ['bin/conclave.js', 'audit', join(root, 'agent-3'), '--kubo', own.url, '--json']).catch((err: { stdout: string }) => err)
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, modelHash: reports[2]?.audit.modelHash })
    } finally {
      for (const m of running) m.child.kill('SIGTERM')
      await Promise.all(running.map(async m => m.exited))
      for (const n of nodes) await stop(n)
    }
  })
})
