import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import { createKuboStore } from '../../src/storage/kubo.ts'
import { smallConfig } from '../federation/helpers.ts'
import { withWithholder } from '../federation/withholder.ts'

// The binary scripts/services/kubo.sh built and cached (the suite's setup runs it first).
const BIN = join(process.env.CONCLAVE_CACHE ?? join(homedir(), '.cache', 'conclave'), 'bin', `ipfs-${process.env.KUBO_VERSION ?? 'v0.43.0'}`)

interface KuboNode { url: string, swarm: string, env: NodeJS.ProcessEnv, daemon: ChildProcess }

/**
 * A kubo node of its own, online as a member's node is (kubo.sh's is offline): on loopback,
 * random ports, no bootstrap peers and no MDNS (`--profile=test`), so it asks only the peers
 * it is connected to.
 */
async function kuboNode (): Promise<KuboNode> {
  const env = { ...process.env, IPFS_PATH: await mkdtemp(join(tmpdir(), 'conclave-kubo-')) }
  execFileSync(BIN, ['init', '--profile=test', '-e'], { env, stdio: 'ignore' })
  const daemon = spawn(BIN, ['daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    daemon.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString(); if (out.includes('Daemon is ready')) resolve() })
    daemon.on('exit', code => { reject(new Error(`kubo daemon exited (${String(code)}) before it was ready: ${out}`)) })
  })
  const api = (await readFile(join(env.IPFS_PATH, 'api'), 'utf8')).trim()
  const port = /\/tcp\/(\d+)/.exec(api)?.[1]
  const id = JSON.parse(execFileSync(BIN, ['id'], { env }).toString()) as { Addresses: string[] }
  const swarm = id.Addresses.find(a => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//.test(a))
  if (port === undefined || swarm === undefined) throw new Error(`kubo node at ${api} listens on no loopback TCP address: ${id.Addresses.join(', ')}`)
  return { url: `http://127.0.0.1:${port}`, swarm, env, daemon }
}

async function stop (node: KuboNode): Promise<void> {
  if (node.daemon.exitCode !== null) return
  const exited = new Promise(resolve => node.daemon.on('exit', resolve))
  node.daemon.kill('SIGTERM')
  await exited
}

/**
 * test/federation/withheld-update.test.ts with real kubo nodes: the withholder's Δw is on its
 * own node only, which mine is not connected to. My node looks for it until my store's
 * timeout and says it gave no answer, as the embedded test's store does; connected to the
 * withholder's node at last, it fetches it at the next try. (Before, the store read offline
 * only: "not found" at once, and a Δw on another member's node was never fetched at all.)
 */
describe('a member whose kubo node cannot find a proposal\'s Δw', () => {
  it('handles the records announced after it, trains and proposes meanwhile, and judges both once its node finds it', { timeout: 180_000 }, async () => {
    const [withholders, mine] = [await kuboNode(), await kuboNode()]
    try {
      const store = createKuboStore({ url: mine.url, timeoutMs: 2_000 })
      const withholder = createKuboStore({ url: withholders.url })
      await withWithholder(smallConfig({ agents: 3, rounds: 1 }), { mine: store, withholder }, async ({ participant, propose, votedOn, voted }) => {
        const hidden = await propose('withholder', 1e-4)
        await participant.idle()
        const cid = participant.state.proposals.get(hidden)?.signed.record.delta.cid as string
        // What kubo does with a block no peer provides: no answer until the caller's timeout.
        await expect(store.get(cid)).rejects.toThrow(BackendUnavailableError)
        const open = await propose('peer', 2e-4)
        const own = await participant.propose(1)
        await participant.idle()
        expect(participant.state.rounds.get(1)?.proposals).toEqual([hidden, open, own])
        expect(votedOn.size).toBe(0)

        // The withholder gives in: its node and mine connect, and my next try finds the Δw.
        execFileSync(BIN, ['swarm', 'connect', withholders.swarm], { env: mine.env, stdio: 'ignore' })
        await voted(open)
        expect([...votedOn.keys()]).toEqual([hidden, open])
        // Fetched from the withholder's node: a member's store reads what only a peer's node held.
        expect(await store.get(cid)).toEqual(await withholder.get(cid))
      })
      await store.close()
      await withholder.close()
    } finally {
      await stop(withholders)
      await stop(mine)
    }
  })
})
