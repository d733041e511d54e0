import { createJWT } from 'did-jwt'
import type { KeyObject } from 'node:crypto'
import { mapConcurrently } from '../core/concurrently.ts'
import { InvalidRecordError } from '../core/errors.ts'
import { publicKeyOfDid } from './did-key.ts'
import { SIGNATURE_BYTES, verifyEd25519, verifyEd25519Async } from './ed25519.ts'
import { VerifiedJwts } from './verified-jwts.ts'

/**
 * EdDSA JWTs in compact form (RFC 7515): made by did-jwt's `createJWT` over our own Ed25519
 * signer, so their bytes are what they always were, and checked here through node:crypto
 * against the did:key in `iss`, each distinct text once per process.
 */

/** What signs: the issuer's DID and raw Ed25519 signatures by its key (an `Identity`). */
export interface JwtSigner {
  readonly did: string
  signBytes(bytes: Uint8Array): Uint8Array
}

/** Signs `payload` as `signer`: `iss` is added last, the header is `{"alg":"EdDSA","typ":"JWT"}`. */
export async function signJwt (signer: JwtSigner, payload: { [claim: string]: unknown }): Promise<string> {
  const sign = async (data: string | Uint8Array): Promise<string> =>
    Buffer.from(signer.signBytes(typeof data === 'string' ? Buffer.from(data) : data)).toString('base64url')
  return createJWT(payload, { issuer: signer.did, signer: sign }, { alg: 'EdDSA' })
}

/** Texts whose signature verified: 65,536 of them or 32 Mi characters (a record is at most 16 KiB). */
const verified = new VerifiedJwts(65_536, 32 * 2 ** 20)

const SEGMENT = /^[A-Za-z0-9_-]+$/

/** A JWT split and parsed, trusted in nothing until `signedByIssuer` says so. Only `decode` makes one. */
export class Jwt {
  readonly text: string
  readonly header: { readonly [field: string]: unknown }
  readonly payload: { readonly [claim: string]: unknown }
  /** `iss` as decoded, kept apart so that nobody's later change to `payload` moves the check to another key. */
  readonly #issuer: unknown

  private constructor (text: string, header: { [field: string]: unknown }, payload: { [claim: string]: unknown }) {
    this.text = text
    this.header = header
    this.payload = payload
    this.#issuer = payload.iss
  }

  /** Three base64url segments, header and payload JSON objects; InvalidRecordError otherwise. */
  static decode (text: string): Jwt {
    const parts = text.split('.')
    if (parts.length !== 3 || !parts.every(p => SEGMENT.test(p))) throw new InvalidRecordError('not a JWT: expected three base64url segments')
    const [header, payload] = parts.slice(0, 2).map(part => {
      try {
        return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown
      } catch (err) {
        throw new InvalidRecordError('not a JWT: a segment is not base64url JSON', { cause: err })
      }
    })
    if (!isObject(header) || !isObject(payload)) throw new InvalidRecordError('not a JWT: header and payload must be JSON objects')
    return new Jwt(text, header, payload)
  }

  /**
   * Whether the header says EdDSA and the third segment is the Ed25519 signature, by the
   * key the `iss` did:key names, over the first two. The signature must be base64url in its
   * one canonical spelling: another spelling of the same bytes would be a second text for
   * one record. A text that verified once is not checked again (see VerifiedJwts).
   */
  signedByIssuer (): boolean {
    if (verified.has(this.text)) return true
    const input = this.#signingInput()
    const good = input !== undefined && verifyEd25519(input.key, input.data, input.signature)
    if (good) verified.add(this.text, true)
    return good
  }

  /**
   * Checks many texts' signatures at once on the thread pool and remembers the good ones, so
   * that each one's `signedByIssuer` is then a lookup: for whoever holds a whole ledger (an
   * audit, a member reopening its copy). Decides nothing: a text that is not a JWT or does
   * not verify is left to fail, in its turn, where it is checked.
   */
  static async verifyMany (texts: Iterable<string>): Promise<void> {
    const pending = [...new Set(texts)].filter(text => !verified.has(text))
    await mapConcurrently(pending, IN_FLIGHT, async text => {
      let input: SigningInput | undefined
      try {
        input = Jwt.decode(text).#signingInput()
      } catch (err) {
        if (err instanceof InvalidRecordError) return
        throw err
      }
      if (input !== undefined && await verifyEd25519Async(input.key, input.data, input.signature)) verified.add(text, true)
    })
  }

  /** What the signature must verify: the issuer's key, the first two segments and the third's bytes; undefined when no key or no canonical signature. */
  #signingInput (): SigningInput | undefined {
    const dot = this.text.lastIndexOf('.')
    const encoded = this.text.slice(dot + 1)
    const signature = Buffer.from(encoded, 'base64url')
    const key = this.header.alg === 'EdDSA' && typeof this.#issuer === 'string' ? keyOf(this.#issuer) : undefined
    if (key === undefined || signature.length !== SIGNATURE_BYTES || signature.toString('base64url') !== encoded) return undefined
    return { key, data: Buffer.from(this.text.slice(0, dot)), signature }
  }
}

interface SigningInput { key: KeyObject, data: Buffer, signature: Buffer }

/** Checks in flight at once in `verifyMany`. */
const IN_FLIGHT = 64

/** The key a did:key names, or undefined when it names none (so nothing it signed verifies). */
function keyOf (did: string): KeyObject | undefined {
  try {
    return publicKeyOfDid(did)
  } catch (err) {
    if (err instanceof InvalidRecordError) return undefined
    throw err
  }
}

function isObject (value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
