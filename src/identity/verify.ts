import { z } from 'zod'
import {
  BadSignatureError, ExpiredRecordError, InvalidRecordError, NotMemberError,
  PayloadTooLargeError, ReplayedNonceError
} from '../core/errors.ts'
import { deepFreeze } from '../core/freeze.ts'
import { Claims, MAX_RECORD_BYTES, Record, type SignedRecord } from '../core/records.ts'
import { Jwt } from './jwt.ts'
import { VerifiedJwts } from './verified-jwts.ts'

/** Clock skew tolerated between peers, in seconds. */
const SKEW_SECONDS = 60

export interface VerifyOptions {
  /** DIDs allowed to issue records; omit to accept any valid signature (the charter). */
  members?: ReadonlySet<string>
  /** Unix seconds to check `iat`/`exp` against. @default now */
  now?: number
  /** Remembers nonces per issuer; a second sighting is a replay. */
  nonces?: NonceRegistry
}

/**
 * Checks, in order: size, JWT structure, record schema, EdDSA signature against the
 * issuer's did:key, membership, validity times, and the nonce. Each failure has its own
 * error class, so a peer's bad record is rejected by name and the federation goes on.
 * What depends on the text alone (its structure, schema and signature) is checked once per
 * process and the result shared, frozen, by every participant that verifies the same text;
 * everything that depends on the options is checked on every call.
 */
export async function verifyRecord (jwt: string, options: VerifyOptions = {}): Promise<SignedRecord> {
  const signed = checkedText(jwt, options.members)
  const now = options.now ?? Math.floor(Date.now() / 1000)
  if (signed.issuedAt > now + SKEW_SECONDS || signed.expiresAt < now - SKEW_SECONDS || signed.expiresAt <= signed.issuedAt) {
    throw new ExpiredRecordError(`${signed.record.type} record from ${signed.issuer} is valid ${signed.issuedAt}..${signed.expiresAt}, not at ${now}`)
  }
  options.nonces?.claim(signed.issuer, signed.nonce)
  return signed
}

/**
 * Who signed a record, checked (structure, schema, signature and, given `members`, membership)
 * but not its times: for one that is not yet anchored, whose block's time is not known.
 */
export function verifiedSigner (jwt: string, members?: ReadonlySet<string>): string {
  return checkedText(jwt, members).issuer
}

/** What depends on a record's text and the members: its size, structure, schema, signature and signer. */
function checkedText (jwt: string, members?: ReadonlySet<string>): SignedRecord {
  if (jwt.length > MAX_RECORD_BYTES) {
    throw new PayloadTooLargeError(`record of ${jwt.length} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit`)
  }
  const signed = parsed.get(jwt) ?? parseSigned(jwt)
  if (members !== undefined && !members.has(signed.issuer)) {
    throw new NotMemberError(`${signed.issuer} is not a member of federation ${signed.record.federation}`)
  }
  return signed
}

/**
 * Records whose text passed structure, schema and signature, as parsed: in a process of N
 * participants each record is applied N times, and its decoding and schema checks cost more
 * than its (already shared) signature check. Frozen, as every holder shares one object.
 * Kept for the records of about one round of a large federation (a round of 100 members
 * anchors ~700), so the cache stays small when runs are long.
 */
const parsed = new VerifiedJwts<SignedRecord>(1024, 4 * 2 ** 20)

/** Decodes a record's text and checks its structure, schema and signature; remembers it when all pass. */
function parseSigned (jwt: string): SignedRecord {
  const decoded = Jwt.decode(jwt)
  const { payload, header } = decoded
  if (header.alg !== 'EdDSA') throw new InvalidRecordError(`records are signed with EdDSA, not ${String(header.alg)}`)
  const claims = Claims.safeParse(payload)
  const record = Record.safeParse(withoutClaims(payload))
  if (!claims.success) throw new InvalidRecordError(`bad JWT claims: ${z.prettifyError(claims.error)}`)
  if (!record.success) throw new InvalidRecordError(`bad record: ${z.prettifyError(record.error)}`)
  if (!decoded.signedByIssuer()) {
    throw new BadSignatureError(`signature of a ${record.data.type} record does not verify for ${claims.data.iss}`)
  }
  const signed = deepFreeze({ jwt, issuer: claims.data.iss, issuedAt: claims.data.iat, expiresAt: claims.data.exp, nonce: claims.data.jti, record: record.data })
  parsed.add(jwt, signed)
  return signed
}

/**
 * Checks many records' signatures ahead, together on every core, so that verifying each
 * in its turn skips the signature: for whoever holds many at once (a ledger file). Changes
 * no outcome: a record that does not verify fails when it is verified.
 */
export async function preverifyRecords (jwts: Iterable<string>): Promise<void> {
  await Jwt.verifyMany(jwts)
}

/**
 * What a JWT claims to carry, unverified: only for deciding what to prepare before
 * verification, or for naming a record that failed it. Never for trusting it.
 */
export function peekRecord (jwt: string): { issuer: string | null, record: Record | null, issuedAt: number | null } {
  try {
    const payload = Jwt.decode(jwt).payload
    const result = Record.safeParse(withoutClaims(payload))
    return { issuer: typeof payload.iss === 'string' ? payload.iss : null, record: result.success ? result.data : null, issuedAt: typeof payload.iat === 'number' ? payload.iat : null }
  } catch {
    return { issuer: null, record: null, issuedAt: null }
  }
}

/** The record is the JWT payload less the registered claims. */
function withoutClaims (payload: object): object {
  const { iss: _iss, iat: _iat, exp: _exp, jti: _jti, ...record } = payload as { [claim: string]: unknown }
  return record
}

/** Nonces seen per issuer. A record whose nonce was already claimed is a replay. */
export class NonceRegistry {
  readonly #seen = new Map<string, Set<string>>()

  /** Throws ReplayedNonceError if the nonce was claimed before; records nothing. */
  assertFresh (issuer: string, nonce: string): void {
    if (this.#seen.get(issuer)?.has(nonce) === true) throw new ReplayedNonceError(`nonce ${nonce} from ${issuer} was already used`)
  }

  claim (issuer: string, nonce: string): void {
    this.assertFresh(issuer, nonce)
    let set = this.#seen.get(issuer)
    if (set === undefined) this.#seen.set(issuer, set = new Set())
    set.add(nonce)
  }
}
