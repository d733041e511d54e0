import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Method } from 'matrix-js-sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.ts'
import { createMatrixBus } from '../../src/transport/matrix.ts'
import { matrixClient, request } from '../../src/transport/matrix/requests.ts'

const servers: Server[] = []
afterEach(() => { for (const s of servers.splice(0)) { s.closeAllConnections(); s.close() } })

async function serve (handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle)
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

// Found red-teaming: the bus's matrix-js-sdk client followed a 307/308, re-sending the access token
// and message bodies (signed records, votes) to whatever the Location named.
describe.each([307, 308])('a homeserver answering %i', (status) => {
  const reached: string[] = []
  afterEach(() => { reached.length = 0 })
  /** A homeserver that redirects every request to a second server, which notes what reaches it. */
  const homeserver = async (): Promise<string> => {
    const away = await serve((req, res) => {
      reached.push(`${req.method} ${req.url} ${req.headers.authorization}`)
      res.writeHead(404, { 'content-type': 'application/json' }); res.end(JSON.stringify({ errcode: 'M_NOT_FOUND', error: 'no' }))
    })
    return serve((req, res) => { res.writeHead(status, { location: `${away}${req.url}` }); res.end() })
  }

  it('is refused when a bus opens, naming the URL; nothing reaches the Location', async () => {
    const url = await homeserver()
    await expect(createMatrixBus({ baseUrl: url, userId: '@agent-1:x', accessToken: 'token', pollMs: 10 }))
      .rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${url}/_matrix/client/v3/account/whoami`) })
    expect(reached).toEqual([])
  })

  it('is refused on a send, with no retry; the body and token reach nobody else', async () => {
    const url = await homeserver()
    const client = matrixClient({ baseUrl: url, userId: '@agent-1:x', accessToken: 'token', pollMs: 10, logger: silentLogger })
    const send = request(() => client.http.authedRequest(Method.Put, '/rooms/!r:x/send/m.room.message/t1', undefined, { body: 'a signed vote' }))
    await expect(send).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${url}/_matrix/client/v3/rooms/`) })
    expect(reached).toEqual([])
  })
})
