import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createContentStore, type ContentStore } from '../../src/storage/index.ts'
import { createKuboStore } from '../../src/storage/kubo.ts'

// The kubo store runs the conformance suite against a real daemon in
// test/integration/kubo.int.test.ts; these are the checks that need no daemon.

const HELLO = 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i'
const hello = new TextEncoder().encode('hello federation')

const outcomes = async (calls: Array<Promise<unknown>>): Promise<string[]> =>
  (await Promise.allSettled(calls)).map(r => r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')

const everyMethod = (store: ContentStore, cid: string, options = {}): Array<Promise<unknown>> =>
  [store.put(hello, options), ...everyLookup(store, cid, options)]
const everyLookup = (store: ContentStore, cid: string, options = {}): Array<Promise<unknown>> =>
  [store.get(cid, options), store.has(cid, options), store.pin(cid, options), store.isPinned(cid, options)]

/** A loopback port nothing listens on (connection refused). */
async function closedPort (): Promise<number> {
  const probe = createTcpServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise(resolve => probe.close(resolve))
  return port
}

const servers: Array<{ close: () => void }> = []
afterEach(() => { for (const s of servers.splice(0)) s.close() })

/** A fake kubo RPC API: each path answers with the handler's status and body. */
async function fakeKubo (routes: Record<string, () => { status?: number, body: string | Uint8Array }>): Promise<string> {
  const server: Server = createServer((req, res) => {
    const route = routes[(req.url ?? '').split('?')[0] as string]
    const { status, body } = route?.() ?? { status: 404, body: '404 page not found' }
    req.resume()
    res.writeHead(status ?? 200, { 'content-type': status === undefined || status === 200 ? 'application/octet-stream' : 'application/json' })
    res.end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  servers.push({ close: () => server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const kuboError = (message: string) => ({ status: 500, body: JSON.stringify({ Message: message, Code: 0, Type: 'error' }) })

describe('kubo store without a daemon', () => {
  it('reports a refused connection as BackendUnavailableError in every method, quickly', async () => {
    const store = await createContentStore({ kind: 'kubo', url: `http://127.0.0.1:${await closedPort()}` }, { dir: '/unused' })
    const started = Date.now()
    expect(await outcomes(everyMethod(store, HELLO))).toEqual(Array(5).fill('BackendUnavailableError'))
    expect(Date.now() - started).toBeLessThan(5_000)
    await expect(store.put(hello)).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE' })
  })

  it('reports a daemon that never answers as BackendUnavailableError after timeoutMs', async () => {
    const sockets: Socket[] = []
    const silent = createTcpServer(socket => { sockets.push(socket) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    servers.push({ close: () => { for (const s of sockets) s.destroy(); silent.close() } })
    const store = createKuboStore({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 200 })
    const started = Date.now()
    expect(await outcomes(everyMethod(store, HELLO))).toEqual(Array(5).fill('BackendUnavailableError'))
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('refuses a non-CID before any network call (InvalidRecordError)', async () => {
    const store = createKuboStore({ url: 'http://127.0.0.1:9' })
    expect(await outcomes(everyLookup(store, 'hello'))).toEqual(Array(4).fill('InvalidRecordError'))
  })

  it('honours an aborted signal before any network call (AbortError)', async () => {
    const store = createKuboStore({ url: 'http://127.0.0.1:9' })
    expect(await outcomes(everyMethod(store, HELLO, { signal: AbortSignal.abort() }))).toEqual(Array(5).fill('AbortError'))
  })

  it('refuses a bad url or timeout (ConfigError)', () => {
    for (const options of [{ url: 'not a url' }, { url: 'ftp://127.0.0.1:5001' }, { url: 'http://127.0.0.1:5001', timeoutMs: 0 }]) {
      expect(() => createKuboStore(options), JSON.stringify(options)).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    }
  })
})

describe('kubo store against a fake daemon', () => {
  it('checks that what cat returns rebuilds the CID (ContentMismatchError)', async () => {
    const url = await fakeKubo({
      '/api/v0/files/stat': () => ({ body: JSON.stringify({ Hash: HELLO, Size: hello.length, CumulativeSize: hello.length, Blocks: 0, Type: 'file' }) }),
      '/api/v0/cat': () => ({ body: new TextEncoder().encode('hello federatioN') })
    })
    await expect(createKuboStore({ url }).get(HELLO)).rejects.toMatchObject({ name: 'ContentMismatchError' })
  })

  it('returns what cat returns when it rebuilds the CID, and refuses it over maxBytes', async () => {
    const url = await fakeKubo({
      '/api/v0/files/stat': () => ({ body: JSON.stringify({ Hash: HELLO, Size: hello.length, CumulativeSize: hello.length, Blocks: 0, Type: 'file' }) }),
      '/api/v0/cat': () => ({ body: hello })
    })
    const store = createKuboStore({ url })
    expect(await store.get(HELLO)).toEqual(hello)
    await expect(store.get(HELLO, { maxBytes: hello.length - 1 })).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
  })

  it('refuses what cat streams past maxBytes when the node\'s stat said less', async () => {
    const url = await fakeKubo({
      '/api/v0/files/stat': () => ({ body: JSON.stringify({ Hash: HELLO, Size: 1, CumulativeSize: 1, Blocks: 0, Type: 'file' }) }),
      '/api/v0/cat': () => ({ body: hello })
    })
    await expect(createKuboStore({ url }).get(HELLO, { maxBytes: hello.length - 1 })).rejects.toMatchObject({ name: 'PayloadTooLargeError', message: expect.stringContaining(`content ${HELLO}`) })
  })

  it('checks the CID kubo gives an add against the one computed locally (ContentMismatchError)', async () => {
    const other = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    const url = await fakeKubo({ '/api/v0/add': () => ({ body: JSON.stringify({ Name: other, Hash: other, Size: '16' }) + '\n' }) })
    await expect(createKuboStore({ url }).put(hello)).rejects.toMatchObject({ name: 'ContentMismatchError' })
  })

  it("maps kubo's offline not-found answers: has → false, isPinned → false, get and pin → ContentNotFoundError", async () => {
    const notFound = () => kuboError(`block was not found locally (offline): ipld: could not find ${HELLO}`)
    const url = await fakeKubo({
      '/api/v0/block/stat': notFound,
      '/api/v0/files/stat': notFound,
      '/api/v0/pin/add': notFound,
      '/api/v0/pin/ls': () => kuboError(`path '${HELLO}' is not pinned`)
    })
    const store = createKuboStore({ url })
    expect(await store.has(HELLO)).toBe(false)
    expect(await store.isPinned(HELLO)).toBe(false)
    expect(await outcomes([store.get(HELLO), store.pin(HELLO)])).toEqual(['ContentNotFoundError', 'ContentNotFoundError'])
  })
})
