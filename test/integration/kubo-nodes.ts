import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'

// The binary scripts/services/kubo.sh built and cached (the suite's setup runs it first).
export const BIN = join(process.env.CONCLAVE_CACHE ?? join(homedir(), '.cache', 'conclave'), 'bin', `ipfs-${process.env.KUBO_VERSION ?? 'v0.43.0'}`)

export interface KuboNode { url: string, swarm: string, env: NodeJS.ProcessEnv, daemon: ChildProcess }

/**
 * A kubo node of its own, online as a member's node is (kubo.sh's is offline): on loopback,
 * random ports, no bootstrap peers and no MDNS (`--profile=test`), so it asks only the peers
 * it is connected to.
 */
export async function kuboNode (): Promise<KuboNode> {
  const env = { ...process.env, IPFS_PATH: await mkdtemp(join(tmpdir(), 'conclave-kubo-')) }
  execFileSync(BIN, ['init', '--profile=test', '-e'], { env, stdio: 'ignore' })
  const daemon = spawn(BIN, ['daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    // Both streams read to the end, so a chatty daemon never blocks on a full pipe.
    daemon.stderr?.on('data', (chunk: Buffer) => { out += chunk.toString() })
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

/** Stops the node and removes its repository (made by kuboNode). */
export async function stop (node: KuboNode): Promise<void> {
  if (node.daemon.exitCode === null && node.daemon.signalCode === null) {
    const exited = new Promise(resolve => node.daemon.on('exit', resolve))
    node.daemon.kill('SIGTERM')
    await exited
  }
  await rm(node.env.IPFS_PATH as string, { recursive: true, force: true })
}

/** Connects `a`'s node to `b`'s, as peered machines' nodes are. */
export function connect (a: KuboNode, b: KuboNode): void {
  execFileSync(BIN, ['swarm', 'connect', b.swarm], { env: a.env, stdio: 'ignore' })
}
