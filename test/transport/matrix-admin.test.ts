import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { logout, memberAccount, registerWithSharedSecret } from '../../src/transport/matrix-admin.ts'

const servers: Server[] = []
afterEach(() => { for (const s of servers.splice(0)) s.close() })

async function serve (handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle)
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const json = (res: ServerResponse, status: number, body: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)) }

// Found red-teaming: fetch followed a 307/308 and re-sent the registration MAC, a member's password
// or its access token to whatever the Location named.
describe.each([307, 308, 302])('a homeserver answering %i', (status) => {
  const reached: string[] = []
  afterEach(() => { reached.length = 0 })
  const elsewhere = async (): Promise<string> => serve((req, res) => { reached.push(`${req.method} ${req.url}`); json(res, 200, { nonce: 'n', user_id: '@x:y', access_token: 't' }) })
  /** A homeserver redirecting requests to `paths` (all of them by default) elsewhere, answering the rest as Synapse would for an account in use. */
  const homeserver = async (paths?: string[]): Promise<string> => {
    const away = await elsewhere()
    return serve((req, res) => {
      const path = new URL(req.url ?? '/', 'http://h').pathname
      if (paths === undefined || paths.includes(path)) { res.writeHead(status, { location: `${away}${req.url}` }); res.end(); return }
      if (req.method === 'GET') json(res, 200, { nonce: 'n' })
      else json(res, 400, { errcode: 'M_USER_IN_USE', error: 'User ID already taken.' })
    })
  }

  it('refuses it on registration, login and logout, naming the URL; nothing reaches the Location', async () => {
    const url = await homeserver()
    await expect(registerWithSharedSecret(url, 'secret', 'admin', 'pw', true)).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${url}/_synapse/admin/v1/register`) })
    await expect(memberAccount(url, 'secret', 'agent-1')).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${url}/_synapse/admin/v1/register`) })
    await expect(logout(url, 'token')).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${url}/_matrix/client/v3/logout`) })
    const login = await homeserver(['/_matrix/client/v3/login'])
    await expect(memberAccount(login, 'secret', 'agent-1')).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining(`${login}/_matrix/client/v3/login`) })
    expect(reached).toEqual([])
  })
})
