import { execFileSync } from 'node:child_process'
import { mkdtemp, stat, chmod, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeJWT } from 'did-jwt'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity, loadOrCreateKeystore, NonceRegistry, signClaims, verifyClaims, verifyRecord, watchOnlyIdentity } from '../../src/identity/index.ts'
import { didFromPublicKey, publicKeyFromDid, randomSecretKey } from '../../src/identity/did-key.ts'

const vote: Vote = { type: 'vote', federation: 'test', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0.01, rationale: 'improves my validation accuracy' }

/** Re-encodes a JWT's payload without re-signing it: what a forger can do. */
function withPayload (jwt: string, change: (p: Record<string, unknown>) => void): string {
  const [h, , s] = jwt.split('.')
  const payload = decodeJWT(jwt).payload as Record<string, unknown>
  change(payload)
  return [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.')
}

describe('identity', () => {
  it('derives did:key from the Ed25519 key (z6Mk prefix) and is stable for a key', () => {
    const key = randomSecretKey()
    const a = createIdentity(key)
    expect(a.did).toMatch(/^did:key:z6Mk/)
    expect(createIdentity(key).did).toBe(a.did)
  })

  it('names no key of small order and no non-canonical encoding: such a DID is refused (any signature verifies for some of them under ZIP-215 rules; found red-teaming)', () => {
    const p = 2n ** 255n - 19n
    const le = (y: bigint, sign = false): Uint8Array => {
      const bytes = Uint8Array.from(Buffer.from(y.toString(16).padStart(64, '0'), 'hex').reverse())
      if (sign) bytes[31] = (bytes[31] as number) | 0x80
      return bytes
    }
    const order8 = ['c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05']
      .map(hex => Uint8Array.from(Buffer.from(hex, 'hex')))
    const bad = [le(0n), le(0n, true), le(1n), le(1n, true), le(p - 1n), le(p - 1n, true), ...order8, ...order8.map(b => { const c = Uint8Array.from(b); c[31] = (c[31] as number) | 0x80; return c }), le(p), le(p + 1n), le(2n ** 255n - 1n)]
    for (const key of bad) {
      const did = didFromPublicKey(key)
      expect(() => publicKeyFromDid(did), Buffer.from(key).toString('hex')).toThrow(/weak|small order|not canonical/)
    }
    const good = createIdentity(randomSecretKey())
    expect(publicKeyFromDid(good.did)).toHaveLength(32)
  })

  it('signs records that verify, with issuer, times and nonce', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote, { now: 1_800_000_000, expiresIn: 600 })
    const signed = await verifyRecord(jwt, { members: new Set([alice.did]), now: 1_800_000_100 })
    expect(signed).toEqual({ jwt, issuer: alice.did, issuedAt: 1_800_000_000, expiresAt: 1_800_000_600, nonce: expect.stringMatching(/^[0-9a-f]{32}$/), record: vote })
  })

  it('rejects a forged issuer (payload claims another DID) with BadSignatureError', async () => {
    const alice = createIdentity(randomSecretKey())
    const mallory = createIdentity(randomSecretKey())
    const jwt = await mallory.sign(vote)
    const forged = withPayload(jwt, p => { p.iss = alice.did })
    await expect(verifyRecord(forged)).rejects.toMatchObject({ name: 'BadSignatureError', code: 'ERR_BAD_SIGNATURE' })
  })

  it('rejects a tampered record with BadSignatureError', async () => {
    const alice = createIdentity(randomSecretKey())
    const tampered = withPayload(await alice.sign(vote), p => { p.accept = false })
    await expect(verifyRecord(tampered)).rejects.toMatchObject({ name: 'BadSignatureError' })
  })

  it('rejects a non-member with NotMemberError', async () => {
    const alice = createIdentity(randomSecretKey())
    const stranger = createIdentity(randomSecretKey())
    await expect(verifyRecord(await stranger.sign(vote), { members: new Set([alice.did]) })).rejects.toMatchObject({ name: 'NotMemberError' })
  })

  it('rejects an expired record and one from the future with ExpiredRecordError', async () => {
    const alice = createIdentity(randomSecretKey())
    const jwt = await alice.sign(vote, { now: 1_800_000_000, expiresIn: 60 })
    await expect(verifyRecord(jwt, { now: 1_800_001_000 })).rejects.toMatchObject({ name: 'ExpiredRecordError' })
    await expect(verifyRecord(jwt, { now: 1_700_000_000 })).rejects.toMatchObject({ name: 'ExpiredRecordError' })
  })

  it('rejects a replayed nonce with ReplayedNonceError', async () => {
    const alice = createIdentity(randomSecretKey())
    const nonces = new NonceRegistry()
    const jwt = await alice.sign(vote)
    await verifyRecord(jwt, { nonces })
    await expect(verifyRecord(jwt, { nonces })).rejects.toMatchObject({ name: 'ReplayedNonceError' })
  })

  it('rejects malformed input with InvalidRecordError or PayloadTooLargeError', async () => {
    const alice = createIdentity(randomSecretKey())
    await expect(verifyRecord('not a jwt')).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(verifyRecord('x'.repeat(100_000))).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
    const badShape = withPayload(await alice.sign(vote), p => { p.score = 'NaN' })
    await expect(verifyRecord(badShape)).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(alice.sign({ ...vote, score: Number.NaN })).rejects.toThrow()
  })
})

describe('keystore', () => {
  it('creates a 0600 keystore and loads the same identity back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-ks-'))
    const path = join(dir, 'agent.key.json')
    const created = await loadOrCreateKeystore(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await loadOrCreateKeystore(path)).did).toBe(created.did)
  })

  it('refuses a keystore readable by others, or one that is not a keystore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-ks-'))
    const path = join(dir, 'agent.key.json')
    await loadOrCreateKeystore(path)
    await chmod(path, 0o644)
    await expect(loadOrCreateKeystore(path)).rejects.toMatchObject({ name: 'KeystoreError' })
    const junk = join(dir, 'junk.json')
    await writeFile(junk, '{"version":1}', { mode: 0o600 })
    await expect(loadOrCreateKeystore(junk)).rejects.toMatchObject({ name: 'KeystoreError' })
  })
})

// Found red-teaming: a FIFO in the keystore's place hung the start (it was read whole).
describe('a keystore that is not a plain file', () => {
  it('follows a link to a keystore (secret mounts link theirs), and refuses a link to nothing, naming the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-ks-'))
    const mine = await loadOrCreateKeystore(join(dir, 'mounted.key.json'))
    const path = join(dir, 'agent.key.json')
    await symlink(join(dir, 'mounted.key.json'), path)
    expect((await loadOrCreateKeystore(path)).did).toBe(mine.did)
    await symlink(join(dir, 'none.key.json'), join(dir, 'dangling.key.json'))
    await expect(loadOrCreateKeystore(join(dir, 'dangling.key.json'))).rejects.toMatchObject({ name: 'KeystoreError', message: expect.stringContaining('dangling.key.json') })
  }, 5_000)

  it('refuses a FIFO or a folder at once, naming the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-ks-'))
    const path = join(dir, 'agent.key.json')
    execFileSync('mkfifo', ['-m', '600', path])
    await expect(loadOrCreateKeystore(path)).rejects.toMatchObject({ name: 'KeystoreError', message: expect.stringContaining(path) })
    const folder = join(dir, 'folder.key.json')
    execFileSync('mkdir', ['-m', '700', folder])
    await expect(loadOrCreateKeystore(folder)).rejects.toMatchObject({ name: 'KeystoreError', message: expect.stringContaining(folder) })
  }, 5_000)
})

describe('signed statements (a run\'s head)', () => {
  it('verify for their signer, and name a forged payload or a non-JWT', async () => {
    const me = createIdentity(randomSecretKey())
    const jwt = await signClaims(me, { head: 'f'.repeat(64) })
    expect(await verifyClaims(jwt)).toEqual({ issuer: me.did, claims: { head: 'f'.repeat(64) } })
    await expect(verifyClaims(withPayload(jwt, p => { p.head = 'e'.repeat(64) }))).rejects.toMatchObject({ name: 'BadSignatureError', code: 'ERR_BAD_SIGNATURE' })
    await expect(verifyClaims(withPayload(jwt, p => { p.iss = createIdentity(randomSecretKey()).did }))).rejects.toMatchObject({ name: 'BadSignatureError' })
    await expect(verifyClaims('not.a.jwt')).rejects.toMatchObject({ name: 'InvalidRecordError', code: 'ERR_INVALID_RECORD' })
  })
})

describe('a watch-only identity (a member loaded read-only)', () => {
  it('has the DID and public key of the member, and signs nothing', async () => {
    const member = createIdentity(randomSecretKey())
    expect(publicKeyFromDid(member.did)).toEqual(member.publicKey)
    const watched = watchOnlyIdentity(member.did)
    expect({ did: watched.did, publicKey: watched.publicKey }).toEqual({ did: member.did, publicKey: member.publicKey })
    const vote: Vote = { type: 'vote', federation: 'f', round: 1, proposal: 'block-0001', accept: true, score: 0, rationale: '' }
    await expect(watched.sign(vote)).rejects.toMatchObject({ name: 'ReadOnlyMemberError', code: 'ERR_READ_ONLY_MEMBER' })
    expect(() => watched.signBytes(new Uint8Array(1))).toThrow(expect.objectContaining({ name: 'ReadOnlyMemberError' }))
  })
})
