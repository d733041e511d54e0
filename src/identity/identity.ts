import { randomBytes } from 'node:crypto'
import { InvalidRecordError, ReadOnlyMemberError } from '../core/errors.ts'
import { MAX_RECORD_BYTES, Record, type Did } from '../core/records.ts'
import { didFromPublicKey, publicKeyFromDid } from './did-key.ts'
import { privateKeyFromSeed, rawPublicKey, signEd25519 } from './ed25519.ts'
import { signJwt } from './jwt.ts'

export interface SignOptions {
  /** Seconds the record stays valid. @default 3600 */
  expiresIn?: number
  /** Issue time in Unix seconds. @default now */
  now?: number
}

/** An agent's DID and the ability to sign records as it. The secret key never leaves. */
export interface Identity {
  readonly did: Did
  readonly publicKey: Uint8Array
  /** Signs a record as an EdDSA JWT with a fresh 128-bit nonce (`jti`). */
  sign(record: Record, options?: SignOptions): Promise<string>
  /** Raw Ed25519 signature over bytes (ledger adapters that sign transactions). */
  signBytes(bytes: Uint8Array): Uint8Array
  /** The 32-byte seed, for adapters that derive their own keypair from it (IOTA). */
  exportSecretKey(): Uint8Array
}

export function createIdentity (secretKey: Uint8Array): Identity {
  const key = Uint8Array.from(secretKey)
  const signing = privateKeyFromSeed(key)
  const publicKey = rawPublicKey(signing)
  const did = didFromPublicKey(publicKey)
  const identity: Identity = {
    did,
    publicKey,
    async sign (record, options = {}) {
      const valid = Record.parse(record)
      const iat = options.now ?? Math.floor(Date.now() / 1000)
      const jwt = await signJwt(identity, { ...valid, iat, exp: iat + (options.expiresIn ?? 3600), jti: randomBytes(16).toString('hex') })
      if (jwt.length > MAX_RECORD_BYTES) {
        throw new InvalidRecordError(`a ${valid.type} record of ${jwt.length} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit`)
      }
      return jwt
    },
    signBytes (bytes) {
      return signEd25519(signing, bytes)
    },
    exportSecretKey () {
      return Uint8Array.from(key)
    }
  }
  return identity
}

/**
 * A member as others see it: its DID and public key, no secret. What a run's members are
 * when loaded read-only (`conclave chat DIR`): anything that would sign is refused.
 */
export function watchOnlyIdentity (did: Did): Identity {
  const refuse = (): never => { throw new ReadOnlyMemberError(`${did} is loaded read-only: it signs nothing`) }
  return { did, publicKey: publicKeyFromDid(did), sign: async () => refuse(), signBytes: refuse, exportSecretKey: refuse }
}
