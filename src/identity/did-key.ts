import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import { Did } from '../core/records.ts'

/** Multicodec prefix of an Ed25519 public key (0xed, varint-encoded). */
const ED25519_PUB = Uint8Array.of(0xed, 0x01)

/** `did:key:z6Mk…` for an Ed25519 public key. */
export function didFromPublicKey (publicKey: Uint8Array): Did {
  const bytes = new Uint8Array(ED25519_PUB.length + publicKey.length)
  bytes.set(ED25519_PUB)
  bytes.set(publicKey, ED25519_PUB.length)
  return Did.parse('did:key:' + base58btc.encode(bytes))
}

export function publicKeyFromSecret (secretKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretKey)
}

export function randomSecretKey (): Uint8Array {
  return ed25519.utils.randomSecretKey()
}

/** The Ed25519 public key a did:key names. */
export function publicKeyFromDid (did: Did): Uint8Array {
  const bytes = base58btc.decode(Did.parse(did).slice('did:key:'.length))
  return bytes.slice(ED25519_PUB.length)
}
