import { createJWT, decodeJWT, verifyJWT } from 'did-jwt'
import { base64url } from 'multiformats/bases/base64'
import { BadSignatureError, InvalidRecordError, PayloadTooLargeError } from '../core/errors.ts'
import { Did, MAX_RECORD_BYTES } from '../core/records.ts'
import type { Identity } from './identity.ts'
import { didKeyResolver } from './verify.ts'

/**
 * A signed statement that is not a protocol record (a run's head): an EdDSA JWT, `iss` the
 * signer's DID, signed through `Identity.signBytes` so the secret key never leaves it.
 */
export async function signClaims (identity: Identity, claims: Record<string, unknown>, options: { now?: number } = {}): Promise<string> {
  const signer = async (data: string | Uint8Array): Promise<string> =>
    base64url.baseEncode(identity.signBytes(typeof data === 'string' ? new TextEncoder().encode(data) : data))
  const iat = options.now ?? Math.floor(Date.now() / 1000)
  return createJWT({ ...claims, iat }, { issuer: identity.did, signer }, { alg: 'EdDSA' })
}

/** Checks a statement's signature against its issuer's did:key; returns who signed what. Never expires. */
export async function verifyClaims (jwt: string): Promise<{ issuer: Did, claims: Record<string, unknown> }> {
  if (jwt.length > MAX_RECORD_BYTES) throw new PayloadTooLargeError(`statement of ${jwt.length} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit`)
  let issuer: string
  try {
    const { header, payload } = decodeJWT(jwt)
    if (header.alg !== 'EdDSA') throw new Error(`signed with ${String(header.alg)}`)
    issuer = Did.parse(payload.iss)
  } catch (err) {
    throw new InvalidRecordError('not an EdDSA JWT from a did:key', { cause: err })
  }
  try {
    const { payload } = await verifyJWT(jwt, { resolver: didKeyResolver, policies: { iat: false, nbf: false, exp: false, aud: false } })
    const { iss: _iss, iat: _iat, ...claims } = payload
    return { issuer: issuer as Did, claims }
  } catch (err) {
    throw new BadSignatureError(`a statement's signature does not verify for ${issuer}`, { cause: err })
  }
}
