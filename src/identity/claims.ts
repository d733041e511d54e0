import { BadSignatureError, InvalidRecordError, PayloadTooLargeError } from '../core/errors.ts'
import { Did, MAX_RECORD_BYTES } from '../core/records.ts'
import type { Identity } from './identity.ts'
import { Jwt, signJwt } from './jwt.ts'

/**
 * A signed statement that is not a protocol record (a run's head): an EdDSA JWT, `iss` the
 * signer's DID, signed through `Identity.signBytes` so the secret key never leaves it.
 */
export async function signClaims (identity: Identity, claims: Record<string, unknown>, options: { now?: number } = {}): Promise<string> {
  return signJwt(identity, { ...claims, iat: options.now ?? Math.floor(Date.now() / 1000) })
}

/** Checks a statement's signature against its issuer's did:key; returns who signed what. Never expires. */
export async function verifyClaims (jwt: string): Promise<{ issuer: Did, claims: Record<string, unknown> }> {
  if (jwt.length > MAX_RECORD_BYTES) throw new PayloadTooLargeError(`statement of ${jwt.length} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit`)
  let decoded: Jwt
  let issuer: Did
  try {
    decoded = Jwt.decode(jwt)
    if (decoded.header.alg !== 'EdDSA') throw new Error(`signed with ${String(decoded.header.alg)}`)
    issuer = Did.parse(decoded.payload.iss)
  } catch (err) {
    throw new InvalidRecordError('not an EdDSA JWT from a did:key', { cause: err })
  }
  if (!decoded.signedByIssuer()) throw new BadSignatureError(`a statement's signature does not verify for ${issuer}`)
  const { iss: _iss, iat: _iat, ...claims } = decoded.payload
  return { issuer, claims }
}
