import { createHmac } from 'node:crypto'
import { BackendUnavailableError } from '../core/errors.ts'

/**
 * Registers a user through Synapse's shared-secret admin API
 * (`/_synapse/admin/v1/register`: GET a nonce, POST with an HMAC-SHA1 over
 * nonce, user, password and admin flag). For scripts and tests on a homeserver we run.
 */
export async function registerWithSharedSecret (baseUrl: string, secret: string, user: string, password: string, admin = false): Promise<{ userId: string, accessToken: string }> {
  const url = new URL('/_synapse/admin/v1/register', baseUrl)
  const nonceResponse = await fetch(url)
  if (!nonceResponse.ok) throw new BackendUnavailableError(`${url} answered ${nonceResponse.status}; is Synapse up (npm run services:up)?`)
  const { nonce } = await nonceResponse.json() as { nonce: string }
  const mac = createHmac('sha1', secret).update([nonce, user, password, admin ? 'admin' : 'notadmin'].join('\0')).digest('hex')
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nonce, username: user, password, admin, mac }) })
  const body = await response.json() as { user_id?: string, access_token?: string, error?: string }
  if (!response.ok || body.access_token === undefined || body.user_id === undefined) throw new BackendUnavailableError(`registering ${user} failed: ${body.error ?? response.status}`)
  return { userId: body.user_id, accessToken: body.access_token }
}
