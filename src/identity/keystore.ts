import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { z } from 'zod'
import { KeystoreError } from '../core/errors.ts'
import { Did } from '../core/records.ts'
import { didFromPublicKey, publicKeyFromSecret, randomSecretKey } from './did-key.ts'
import { createIdentity, type Identity } from './identity.ts'

const KeystoreFile = z.object({
  version: z.literal(1),
  did: Did,
  secretKey: z.string().regex(/^[0-9a-f]{64}$/)
}).strict()

/**
 * Loads the agent's identity from `path`, creating a fresh Ed25519 key there (mode 0600)
 * when the file does not exist. A file readable by group or others is refused.
 */
export async function loadOrCreateKeystore (path: string, options: { secretKey?: Uint8Array } = {}): Promise<Identity> {
  const existing = await stat(path).catch(() => undefined)
  if (existing === undefined) {
    const secretKey = options.secretKey ?? randomSecretKey()
    const file = { version: 1, did: didFromPublicKey(publicKeyFromSecret(secretKey)), secretKey: Buffer.from(secretKey).toString('hex') }
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    await chmod(path, 0o600)
    return createIdentity(secretKey)
  }
  if ((existing.mode & 0o077) !== 0) {
    throw new KeystoreError(`keystore ${path} is readable by others (mode ${(existing.mode & 0o777).toString(8)}); run chmod 600 on it`)
  }
  let parsed: z.infer<typeof KeystoreFile>
  try {
    parsed = KeystoreFile.parse(JSON.parse(await readFile(path, 'utf8')))
  } catch (err) {
    throw new KeystoreError(`keystore ${path} is not a Conclave keystore`, { cause: err })
  }
  const identity = createIdentity(Buffer.from(parsed.secretKey, 'hex'))
  if (identity.did !== parsed.did) {
    throw new KeystoreError(`keystore ${path} names ${parsed.did} but its key belongs to ${identity.did}`)
  }
  return identity
}
