import { createHmac } from 'node:crypto'
import { BackendUnavailableError, ConfigError } from '../core/errors.ts'
import { fromHomeserver } from './matrix/homeserver.ts'

export interface MatrixAccount { userId: string, accessToken: string }

/**
 * Registers a user through Synapse's shared-secret admin API
 * (`/_synapse/admin/v1/register`: GET a nonce, POST with an HMAC-SHA1 over
 * nonce, user, password and admin flag). For scripts and tests on a homeserver we run.
 */
export async function registerWithSharedSecret (baseUrl: string, secret: string, user: string, password: string, admin = false): Promise<MatrixAccount> {
  const result = await register(baseUrl, secret, user, password, admin)
  if ('account' in result) return result.account
  throw new BackendUnavailableError(`registering ${user} failed: ${result.error}`)
}

/**
 * A member's own account through the homeserver's registration shared secret: registered
 * on first use, logged into afterwards, with a password derived from the secret and the
 * user name, so nothing about it is stored anywhere.
 */
export async function memberAccount (baseUrl: string, secret: string, user: string): Promise<MatrixAccount> {
  const password = createHmac('sha256', secret).update(`conclave member password\0${user}`).digest('base64url')
  const registered = await register(baseUrl, secret, user, password, false)
  if ('account' in registered) return registered.account
  if (registered.errcode !== 'M_USER_IN_USE') throw new BackendUnavailableError(`registering ${user} failed: ${registered.error}`)
  const response = await fromHomeserver(new URL('/_matrix/client/v3/login', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password, initial_device_display_name: 'conclave' })
  })
  const body = await response.json() as { user_id?: string, access_token?: string, error?: string }
  if (response.status === 403) throw new ConfigError(`the Matrix account ${user} exists, but not with the password this registration secret gives: it was not registered by Conclave with this secret`)
  if (!response.ok || body.access_token === undefined || body.user_id === undefined) throw new BackendUnavailableError(`logging in as ${user} failed: ${body.error ?? response.status}`)
  return { userId: body.user_id, accessToken: body.access_token }
}

/** Ends the session of a token Conclave got by registering or logging in, so runs leave no sessions behind. */
export async function logout (baseUrl: string, accessToken: string): Promise<void> {
  await fromHomeserver(new URL('/_matrix/client/v3/logout', baseUrl), { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, body: '{}' })
}

async function register (baseUrl: string, secret: string, user: string, password: string, admin: boolean): Promise<{ account: MatrixAccount } | { errcode?: string, error: string }> {
  const url = new URL('/_synapse/admin/v1/register', baseUrl)
  const nonceResponse = await fromHomeserver(url)
  if (!nonceResponse.ok) throw new BackendUnavailableError(`${url} answered ${nonceResponse.status}; is Synapse up (npm run services:up)?`)
  const { nonce } = await nonceResponse.json() as { nonce: string }
  const mac = createHmac('sha1', secret).update([nonce, user, password, admin ? 'admin' : 'notadmin'].join('\0')).digest('hex')
  const response = await fromHomeserver(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nonce, username: user, password, admin, mac }) })
  const body = await response.json() as { user_id?: string, access_token?: string, errcode?: string, error?: string }
  if (response.ok && body.access_token !== undefined && body.user_id !== undefined) return { account: { userId: body.user_id, accessToken: body.access_token } }
  // A wrong secret is the config's fault, not the server's.
  if (response.status === 403) throw new ConfigError(`${url} refused the registration shared secret: check bus.registrationSecret or CONCLAVE_MATRIX_REGISTRATION_SECRET`)
  return { errcode: body.errcode, error: body.error ?? String(response.status) }
}
