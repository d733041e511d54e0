import { ed25519 } from '@noble/curves/ed25519.js'
import { createJWT, EdDSASigner, verifyJWT } from 'did-jwt'
import { Resolver } from 'did-resolver'
import { getResolver } from 'key-did-resolver'
import { base58btc } from 'multiformats/bases/base58'
import { describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity, signClaims, verifyClaims, verifyRecord } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'

/**
 * Signatures moved from did-jwt + key-did-resolver + @noble/curves to node:crypto. The old
 * path is rebuilt here from those packages, so records signed before the change and after
 * it keep verifying both ways, and the bytes are pinned by vectors signed before it.
 */
const resolver = new Resolver(getResolver())

/** How records were signed before: did-jwt's createJWT with its noble-backed EdDSASigner. */
async function signTheOldWay (secretKey: Uint8Array, did: string, payload: object): Promise<string> {
  return createJWT(payload, { issuer: did, signer: EdDSASigner(secretKey) }, { alg: 'EdDSA' })
}

/** How signatures were checked before: did-jwt's verifyJWT, resolving the did:key. */
async function verifyTheOldWay (jwt: string): Promise<string> {
  return (await verifyJWT(jwt, { resolver, policies: { iat: false, nbf: false, exp: false, aud: false } })).issuer
}

const vote: Vote = { type: 'vote', federation: 'kat', round: 3, proposal: 'c'.repeat(64), accept: true, score: 0.25, rationale: 'known-answer vector, signed before node:crypto' }

/** Signed at commit 51e6ee7 (before node:crypto) by the key 0x01…0x20, at 1_800_000_000. */
const KAT = {
  secretKey: Uint8Array.from({ length: 32 }, (_, i) => i + 1),
  did: 'did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7',
  vote: 'eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE4MDAwMDAwMDAsImV4cCI6MTgwMDAwMzYwMCwidHlwZSI6InZvdGUiLCJmZWRlcmF0aW9uIjoia2F0Iiwicm91bmQiOjMsInByb3Bvc2FsIjoiY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjYyIsImFjY2VwdCI6dHJ1ZSwic2NvcmUiOjAuMjUsInJhdGlvbmFsZSI6Imtub3duLWFuc3dlciB2ZWN0b3IsIHNpZ25lZCBiZWZvcmUgbm9kZTpjcnlwdG8iLCJqdGkiOiJhOGQxZTJkYjk4N2I3MTI1MDljYjk4N2Q4YmM1Mjg1ZiIsImlzcyI6ImRpZDprZXk6ejZNa25lTWtacXdxUmlVNW1KelNHM2tEd3p0OVA4QzU5TjROR1RmQkxmU0dFN2M3In0.u6NvSq2iGw0aCQUBt34S63nSWqynOKOwR4ryH0cDiUoD7X-4YcOBKcIrjsfsMhOqVomqs0DceLcePcnxFz5lDQ',
  head: 'eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE4MDAwMDAwMDAsImhlYWQiOiJmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmIiwiaXNzIjoiZGlkOmtleTp6Nk1rbmVNa1pxd3FSaVU1bUp6U0cza0R3enQ5UDhDNTlONE5HVGZCTGZTR0U3YzcifQ._DkohIbFRlkSwVv772iB76U2Q-oLmyslK1IZC-N-ZgRWrvJ0Sy6hnXJFZYdBMesTfxEEvVI2nAZHTOdeDzbjDQ'
}

const signingInput = (jwt: string): Uint8Array => Buffer.from(jwt.slice(0, jwt.lastIndexOf('.')))
const signatureOf = (jwt: string): Uint8Array => Uint8Array.from(Buffer.from(jwt.slice(jwt.lastIndexOf('.') + 1), 'base64url'))

describe('signatures through node:crypto keep the bytes of did-jwt and noble', () => {
  it('verifies the vectors signed before the change, and re-makes their bytes exactly', async () => {
    const me = createIdentity(KAT.secretKey)
    expect(me.did).toBe(KAT.did)
    expect(await verifyRecord(KAT.vote, { now: 1_800_000_100, members: new Set([KAT.did]) })).toEqual({
      jwt: KAT.vote, issuer: KAT.did, issuedAt: 1_800_000_000, expiresAt: 1_800_003_600, nonce: 'a8d1e2db987b712509cb987d8bc5285f', record: vote
    })
    expect(await verifyClaims(KAT.head)).toEqual({ issuer: KAT.did, claims: { head: 'f'.repeat(64) } })
    // Ed25519 is deterministic: the same key over the same bytes gives the same signature.
    expect(me.signBytes(signingInput(KAT.vote))).toEqual(signatureOf(KAT.vote))
    expect(await signClaims(me, { head: 'f'.repeat(64) }, { now: 1_800_000_000 })).toBe(KAT.head)
  })

  it('verifies what the old path signs, and the old path verifies what it signs', async () => {
    for (let i = 0; i < 8; i++) {
      const secretKey = randomSecretKey()
      const me = createIdentity(secretKey)
      expect(me.did).toBe('did:key:' + base58btc.encode(Uint8Array.of(0xed, 0x01, ...ed25519.getPublicKey(secretKey))))
      const payload = { ...vote, rationale: `vote ${i}`, iat: 1_800_000_000, exp: 1_800_000_600, jti: String(i).padStart(32, '0') }
      const old = await signTheOldWay(secretKey, me.did, payload)
      expect((await verifyRecord(old, { now: 1_800_000_000 })).issuer).toBe(me.did)
      const mine = await me.sign({ ...vote, rationale: `vote ${i}` }, { now: 1_800_000_000, expiresIn: 600 })
      expect(await verifyTheOldWay(mine)).toBe(me.did)
      // Same key, same payload bytes: both paths make the very same JWT.
      const { jti } = JSON.parse(Buffer.from(mine.split('.')[1] as string, 'base64url').toString()) as { jti: string }
      expect(await signTheOldWay(secretKey, me.did, { ...payload, jti })).toBe(mine)
      expect(me.signBytes(Buffer.from('raw bytes'))).toEqual(ed25519.sign(Buffer.from('raw bytes'), secretKey))
    }
  })
})
