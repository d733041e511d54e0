import { randomBytes, type KeyObject } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'
import { BoundedMap } from '../core/bounded-map.ts'
import { InvalidRecordError } from '../core/errors.ts'
import { Did } from '../core/records.ts'
import { privateKeyFromSeed, PUBLIC_KEY_BYTES, publicKeyFromRaw, rawPublicKey, SEED_BYTES } from './ed25519.ts'

/** Multicodec prefix of an Ed25519 public key (0xed, varint-encoded). */
const ED25519_PUB = Uint8Array.of(0xed, 0x01)

/** How many DIDs keep their decoded key: a charter has at most 256 members; strangers come and go. */
const KEYS_KEPT = 4096

/** did:key → its verification key, decoded once (base58 and the key import cost more than a verify). */
const keys = new BoundedMap<string, KeyObject>(KEYS_KEPT)

/** `did:key:z6Mk…` for an Ed25519 public key. */
export function didFromPublicKey (publicKey: Uint8Array): Did {
  const bytes = new Uint8Array(ED25519_PUB.length + publicKey.length)
  bytes.set(ED25519_PUB)
  bytes.set(publicKey, ED25519_PUB.length)
  return Did.parse('did:key:' + base58btc.encode(bytes))
}

/** The Ed25519 key a did:key names; InvalidRecordError when it names none. */
export function publicKeyOfDid (did: string): KeyObject {
  let key = keys.get(did)
  if (key === undefined) {
    keys.set(did, key = publicKeyFromRaw(ed25519KeyBytes(did)))
  }
  return key
}

function ed25519KeyBytes (did: string): Uint8Array {
  const prefix = 'did:key:'
  let bytes: Uint8Array
  try {
    if (!did.startsWith(prefix)) throw new Error('not a did:key')
    bytes = base58btc.decode(did.slice(prefix.length))
  } catch (err) {
    throw new InvalidRecordError(`${did} is not a did:key`, { cause: err })
  }
  if (bytes.length !== ED25519_PUB.length + PUBLIC_KEY_BYTES || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw new InvalidRecordError(`${did} does not name an Ed25519 key`)
  }
  const key = bytes.subarray(ED25519_PUB.length)
  const y = weakKeyY(key)
  if (y !== undefined) throw new InvalidRecordError(`${did} names a weak Ed25519 key (${y})`)
  return key
}

const P = 2n ** 255n - 19n

/**
 * The y coordinates (sign bit aside) of the curve's points of small order: 0, 1, p − 1 and
 * the two of order 8. For such a key some signature verifies over any message under the
 * lenient (ZIP-215) rules; OpenSSL refuses them today, but a DID must not depend on which
 * verifier checks it (found red-teaming).
 */
const SMALL_ORDER_Y = new Set([0n, 1n, P - 1n, ...['7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7', '05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826'].map(hex => BigInt('0x' + hex))])

/** Why a 32-byte public key is weak (small order, or y ≥ p: not canonical); undefined for a sound one. */
function weakKeyY (key: Uint8Array): string | undefined {
  const y = BigInt('0x' + Buffer.from(key).reverse().toString('hex')) & (2n ** 255n - 1n)
  if (y >= P) return 'not canonical'
  return SMALL_ORDER_Y.has(y) ? 'small order' : undefined
}

export function publicKeyFromSecret (secretKey: Uint8Array): Uint8Array {
  return rawPublicKey(privateKeyFromSeed(secretKey))
}

/** A fresh Ed25519 seed: 32 random bytes, as the key's owner keeps it. */
export function randomSecretKey (): Uint8Array {
  return Uint8Array.from(randomBytes(SEED_BYTES))
}

/** The raw Ed25519 public key a did:key names; InvalidRecordError when it names none. */
export function publicKeyFromDid (did: string): Uint8Array {
  return Uint8Array.from(ed25519KeyBytes(did))
}
