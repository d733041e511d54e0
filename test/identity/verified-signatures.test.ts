import { verifyJWT } from 'did-jwt'
import { Resolver } from 'did-resolver'
import { getResolver } from 'key-did-resolver'
import { base58btc } from 'multiformats/bases/base58'
import { describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity, NonceRegistry, preverifyRecords, verifyRecord } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { Jwt } from '../../src/identity/jwt.ts'
import { VerifiedJwts } from '../../src/identity/verified-jwts.ts'

/**
 * A signature is checked once per exact text, then remembered. These are the attacks on
 * that memory: each variant of a remembered record must be checked on its own and fail.
 */
const vote: Vote = { type: 'vote', federation: 'test', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0.01, rationale: 'improves my validation accuracy' }
const oldPath = async (jwt: string): Promise<unknown> =>
  verifyJWT(jwt, { resolver: new Resolver(getResolver()), policies: { iat: false, nbf: false, exp: false, aud: false } })

const segments = (jwt: string): [string, string, string] => jwt.split('.') as [string, string, string]
const encode = (json: object): string => Buffer.from(JSON.stringify(json)).toString('base64url')
const payloadOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(segments(jwt)[1], 'base64url').toString()) as Record<string, unknown>

describe('a remembered signature lets no other text through', () => {
  it('refuses a tampered payload or a swapped issuer under a signature it already accepted', async () => {
    const alice = createIdentity(randomSecretKey())
    const mallory = createIdentity(randomSecretKey())
    const jwt = await mallory.sign(vote)
    await verifyRecord(jwt)
    const [header, , signature] = segments(jwt)
    for (const change of [{ accept: false }, { iss: alice.did }, { rationale: vote.rationale + ' ' }]) {
      const forged = [header, encode({ ...payloadOf(jwt), ...change }), signature].join('.')
      await expect(verifyRecord(forged)).rejects.toMatchObject({ name: 'BadSignatureError', code: 'ERR_BAD_SIGNATURE' })
    }
    await expect(verifyRecord(jwt + '\n')).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })

  it('checks the issuer decoded from the text, whatever is later done to the decoded payload', async () => {
    const alice = createIdentity(randomSecretKey())
    const mallory = createIdentity(randomSecretKey())
    const jwt = await mallory.sign(vote)
    const [header, , signature] = segments(jwt)
    const decoded = Jwt.decode([header, encode({ ...payloadOf(jwt), iss: alice.did }), signature].join('.'))
    ;(decoded.payload as Record<string, unknown>).iss = mallory.did
    expect(decoded.signedByIssuer()).toBe(false)
  })

  it('refuses a second spelling of the same signature bytes, as the old path did', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote)
    await verifyRecord(jwt)
    // 64 bytes take 86 base64url characters; the last carries 2 unused bits, so 4 spellings decode alike.
    const [header, payload, signature] = segments(jwt)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = alphabet.indexOf(signature.at(-1) as string)
    const respelled = [header, payload, signature.slice(0, -1) + alphabet[last ^ 1]].join('.')
    // Node's decoder takes both spellings to the same bytes, so the signature would verify.
    expect(Buffer.from(segments(respelled)[2], 'base64url')).toEqual(Buffer.from(signature, 'base64url'))
    await expect(oldPath(respelled)).rejects.toThrow()
    await expect(verifyRecord(respelled)).rejects.toMatchObject({ name: 'BadSignatureError' })
  })

  it('refuses the universal forgery under a small-order did:key, which the old path took', async () => {
    // The point (0, -1), of order 2, as the public key and (R = identity, S = 0) as the signature
    // satisfy the cofactored equation noble checks (ZIP 215) for every message; OpenSSL checks RFC 8032's.
    const orderTwo = Uint8Array.of(0xec, ...new Uint8Array(30).fill(0xff), 0x7f)
    const did = 'did:key:' + base58btc.encode(Uint8Array.of(0xed, 0x01, ...orderTwo))
    const forged = [encode({ alg: 'EdDSA', typ: 'JWT' }), encode({ iat: 1_800_000_000, exp: 1_800_000_600, ...vote, jti: '0'.repeat(32), iss: did }),
      Buffer.from(Uint8Array.of(1, ...new Uint8Array(63))).toString('base64url')].join('.')
    await expect(oldPath(forged)).resolves.toMatchObject({ verified: true })
    await expect(verifyRecord(forged, { now: 1_800_000_000 })).rejects.toMatchObject({ name: 'BadSignatureError' })
  })

  it('refuses a did:key of another key type as a bad signature, not a crash', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote)
    const secp256k1 = 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'
    const forged = [segments(jwt)[0], encode({ ...payloadOf(jwt), iss: secp256k1 }), segments(jwt)[2]].join('.')
    await expect(verifyRecord(forged)).rejects.toMatchObject({ name: 'BadSignatureError' })
  })

  it('still checks membership, times and nonces of a record whose signature it remembers', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote, { now: 1_800_000_000, expiresIn: 60 })
    await verifyRecord(jwt, { now: 1_800_000_000 })
    await expect(verifyRecord(jwt, { now: 1_800_000_000, members: new Set() })).rejects.toMatchObject({ name: 'NotMemberError' })
    await expect(verifyRecord(jwt, { now: 1_800_001_000 })).rejects.toMatchObject({ name: 'ExpiredRecordError' })
    const nonces = new NonceRegistry()
    await verifyRecord(jwt, { now: 1_800_000_000, nonces })
    await expect(verifyRecord(jwt, { now: 1_800_000_000, nonces })).rejects.toMatchObject({ name: 'ReplayedNonceError' })
  })
})

describe('a record parsed once per process', () => {
  it('is one frozen object for every holder: nobody can change what the next one reads as signed', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote)
    const first = await verifyRecord(jwt)
    const second = await verifyRecord(jwt, { members: new Set([alice.did]) })
    expect(second).toBe(first)
    expect(() => { (first.record as { round: number }).round = 2 }).toThrow(TypeError)
    expect(() => { (first as { issuer: string }).issuer = 'did:key:z6Mkother' }).toThrow(TypeError)
    expect((await verifyRecord(jwt)).record).toEqual(vote)
  })
})

describe('signatures checked ahead, many at once', () => {
  it('remembers only the texts that verify: forged, garbled and foreign-key texts still fail in their turn', async () => {
    const alice = createIdentity(randomSecretKey())
    const mallory = createIdentity(randomSecretKey())
    const good = await Promise.all([1, 2, 3].map(async round => alice.sign({ ...vote, round })))
    const [header, , signature] = segments(good[0] as string)
    const forged = [header, encode({ ...payloadOf(good[0] as string), iss: mallory.did }), signature].join('.')
    const garbled = 'not.a.jwt!'
    await preverifyRecords([...good, forged, garbled, good[0] as string])
    expect(good.map(jwt => Jwt.decode(jwt).signedByIssuer())).toEqual([true, true, true])
    await expect(verifyRecord(forged)).rejects.toMatchObject({ name: 'BadSignatureError' })
    await expect(verifyRecord(garbled)).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })
})

describe('the memory of verified texts is bounded', () => {
  it('keeps at most `limit` texts, oldest forgotten first, and a text seen again counts as new', () => {
    const kept = new VerifiedJwts(3, 1000)
    for (const t of ['a', 'b', 'c']) kept.add(t, true)
    kept.add('a', true)
    kept.add('d', true)
    expect(['a', 'b', 'c', 'd'].filter(t => kept.has(t))).toEqual(['a', 'c', 'd'])
    expect({ size: kept.size, characters: kept.characters }).toEqual({ size: 3, characters: 3 })
  })

  it('keeps at most `budget` characters, and never a text longer than the budget', () => {
    const kept = new VerifiedJwts(100, 10)
    kept.add('aaaa', true)
    kept.add('bbbb', true)
    kept.add('cccc', true)
    expect(['aaaa', 'bbbb', 'cccc'].filter(t => kept.has(t))).toEqual(['bbbb', 'cccc'])
    kept.add('x'.repeat(11), true)
    expect({ size: kept.size, characters: kept.characters, long: kept.has('x'.repeat(11)) }).toEqual({ size: 2, characters: 8, long: false })
    expect(() => new VerifiedJwts(0, 10)).toThrow(RangeError)
  })
})
