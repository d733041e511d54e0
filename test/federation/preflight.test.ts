import { access, mkdtemp, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseRunConfig } from '../../src/federation/config.ts'
import { preflight, servicesOf } from '../../src/federation/preflight.ts'
import { loadOrCreateKeystore } from '../../src/identity/index.ts'
import { startFakeIotaNode } from '../ledger/fake-iota-node.ts'
import { capture } from './capture.ts'

const unavailable = { name: 'BackendUnavailableError', code: 'ERR_BACKEND_UNAVAILABLE' }
const open: Array<() => Promise<void>> = []
afterEach(async () => { await Promise.all(open.splice(0).map(async close => close())) })

async function listen (server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

/** A loopback port nothing listens on: bound once, then released. */
async function closedPort (): Promise<string> {
  const server = createServer()
  const url = await listen(server)
  await new Promise(resolve => server.close(resolve))
  return url
}

/** A server that accepts connections and never says a word. */
async function silentServer (): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer(socket => { sockets.add(socket) })
  const url = await listen(server)
  open.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return url
}

/** An HTTP server that is not the service asked for: every path is 404. */
async function wrongServer (): Promise<string> {
  const server = createHttpServer((_req, res) => { res.writeHead(404).end('not here') })
  const url = await listen(server)
  open.push(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return url
}

const matrixAt = (baseUrl: string): object => ({ bus: { kind: 'matrix', baseUrl, userId: '@conclave:localhost', accessToken: 't' } })
const iotaAt = (url: string): object => ({ ledger: { kind: 'iota', url, packageId: '0x1' } })

/** An HTTP server that answers 200 with a page, whatever it is asked. */
async function pageServer (): Promise<string> {
  const server = createHttpServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<html>welcome</html>') })
  const url = await listen(server)
  open.push(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return url
}

describe('preflight: every remote service the config names answers before anything starts', () => {
  it('probes nothing for the embedded engines, and each configured service at its version endpoint', () => {
    expect(servicesOf(parseRunConfig({}))).toEqual([])
    const config = parseRunConfig({
      ...matrixAt('http://10.0.0.1:8008/'),
      store: { kind: 'kubo', url: 'http://10.0.0.2:5001' },
      task: { kind: 'qa' },
      teacher: { kind: 'ollama', model: 'llama3.1:8b', url: 'http://10.0.0.3:11434' },
      ...iotaAt('http://10.0.0.4:9000')
    })
    expect(servicesOf(config).map(s => ({ ...s, url: s.url.href }))).toEqual([
      { name: 'Matrix homeserver', url: 'http://10.0.0.1:8008/_matrix/client/versions', method: 'GET', fix: 'scripts/services/synapse.sh up' },
      { name: 'kubo', url: 'http://10.0.0.2:5001/api/v0/version', method: 'POST', fix: 'scripts/services/kubo.sh up' },
      { name: 'Ollama', url: 'http://10.0.0.3:11434/api/version', method: 'GET', fix: 'scripts/services/ollama.sh up' },
      { name: 'IOTA node', url: 'http://10.0.0.4:9000/', method: 'POST', rpc: 'iotax_getReferenceGasPrice', fix: 'iota start --force-regenesis --with-faucet' }
    ])
  })

  it('a homeserver on a closed port: BackendUnavailableError naming its URL and the command that starts one', async () => {
    const url = await closedPort()
    const error = await preflight(parseRunConfig(matrixAt(url))).catch((err: unknown) => err)
    expect(error).toMatchObject(unavailable)
    expect((error as Error).message).toContain(`${url}/_matrix/client/versions`)
    expect((error as Error).message).toContain('scripts/services/synapse.sh up')
  })

  it('a kubo that accepts but never answers: BackendUnavailableError once the probe times out', async () => {
    const url = await silentServer()
    const error = await preflight(parseRunConfig({ store: { kind: 'kubo', url } }), { timeoutMs: 200 }).catch((err: unknown) => err)
    expect(error).toMatchObject(unavailable)
    expect((error as Error).message).toContain(`${url}/api/v0/version`)
    expect((error as Error).message).toContain('scripts/services/kubo.sh up')
  })

  it('something else on the teacher\'s port (HTTP 404): BackendUnavailableError naming Ollama\'s URL and fix', async () => {
    const url = await wrongServer()
    const error = await preflight(parseRunConfig({ task: { kind: 'qa' }, teacher: { kind: 'ollama', model: 'm', url } }), { timeoutMs: 2000 }).catch((err: unknown) => err)
    expect(error).toMatchObject(unavailable)
    expect((error as Error).message).toContain(`${url}/api/version`)
    expect((error as Error).message).toContain('scripts/services/ollama.sh up')
  })

  it('an IOTA ledger URL is probed like the other services: unreachable, silent, or not a JSON-RPC node fails naming it; a node passes', async () => {
    for (const url of [await closedPort(), await silentServer(), await wrongServer(), await pageServer()]) {
      const error = await preflight(parseRunConfig(iotaAt(url)), { timeoutMs: 200 }).catch((err: unknown) => err)
      expect(error).toMatchObject(unavailable)
      expect((error as Error).message).toContain(`${url}/`)
      expect((error as Error).message).toContain('iota start')
    }
    const node = await startFakeIotaNode()
    open.push(async () => { await node.close() })
    await expect(preflight(parseRunConfig(iotaAt(node.url)), { timeoutMs: 2000 })).resolves.toBeUndefined()
    expect(node.calls).toEqual(['iotax_getReferenceGasPrice'])
  })

  it('conclave run fails at once on an unreachable homeserver, names it, and creates no run directory', async () => {
    const url = await closedPort()
    const root = await mkdtemp(join(tmpdir(), 'conclave-preflight-'))
    const config = join(root, 'conclave.json')
    const token = 'syt_preflight_never_printed_9Qw'
    await writeFile(config, JSON.stringify({ agents: 2, quorum: 1, bus: { kind: 'matrix', baseUrl: url, userId: '@conclave:localhost', accessToken: token } }))
    const out = join(root, 'run')
    const result = await capture(['run', '--config', config, '--out', out, '--verbose'])
    expect(result.code).toBe(1)
    expect(result.err).toContain('BackendUnavailableError')
    expect(result.err).toContain(url)
    expect(result.err + result.out).not.toContain(token)
    await expect(access(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('conclave agent fails at once on an unreachable kubo, and names it', async () => {
    const url = await closedPort()
    const root = await mkdtemp(join(tmpdir(), 'conclave-preflight-'))
    const members = await Promise.all([1, 2].map(async i => (await loadOrCreateKeystore(join(root, `agent-${i}.key.json`))).did))
    const config = join(root, 'agent-1.json')
    await writeFile(config, JSON.stringify({ member: 1, members, key: 'agent-1.key.json', dir: 'agent-1', quorum: 1, store: { kind: 'kubo', url } }))
    const result = await capture(['agent', '--config', config])
    expect(result.code).toBe(1)
    expect(result.err).toContain('BackendUnavailableError')
    expect(result.err).toContain(url)
    await expect(access(join(root, 'agent-1'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
