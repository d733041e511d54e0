import { constants } from 'node:fs'
import { chmod, lstat, mkdir, open, writeFile } from 'node:fs/promises'
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

/** Most bytes a keystore may take: the one this writes is ~190. */
const MAX_KEYSTORE_BYTES = 64 * 1024

/**
 * Loads the agent's identity from `path`, creating a fresh Ed25519 key there (mode 0600)
 * when nothing is there. A file readable by group or others is refused, and so is anything
 * there but a plain file (found red-teaming: a FIFO hung the start). A link is followed to its
 * file, as secret mounts link theirs: whoever may plant one there may as well put a key there.
 */
export async function loadOrCreateKeystore (path: string, options: { secretKey?: Uint8Array } = {}): Promise<Identity> {
  const found = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw new KeystoreError(`keystore ${path} cannot be read (${err.message})`, { cause: err })
  })
  if (found === undefined) {
    const secretKey = options.secretKey ?? randomSecretKey()
    const file = { version: 1, did: didFromPublicKey(publicKeyFromSecret(secretKey)), secretKey: Buffer.from(secretKey).toString('hex') }
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    await chmod(path, 0o600)
    return createIdentity(secretKey)
  }
  if (!found.isFile() && !found.isSymbolicLink()) throw new KeystoreError(`keystore ${path} is not a plain file: move it away`)
  const text = await readKeystore(path)
  let parsed: z.infer<typeof KeystoreFile>
  try {
    parsed = KeystoreFile.parse(JSON.parse(text))
  } catch (err) {
    throw new KeystoreError(`keystore ${path} is not a Conclave keystore`, { cause: err })
  }
  const identity = createIdentity(Buffer.from(parsed.secretKey, 'hex'))
  if (identity.did !== parsed.did) {
    throw new KeystoreError(`keystore ${path} names ${parsed.did} but its key belongs to ${identity.did}`)
  }
  return identity
}

/**
 * The keystore's text, read from the plain file checked by its handle (no FIFO waited on,
 * whatever was put there since the lstat), of at most MAX_KEYSTORE_BYTES; its mode too.
 */
async function readKeystore (path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new KeystoreError(err.code === 'ENOENT' ? `keystore ${path} is a link to nothing: move it away` : `keystore ${path} cannot be read (${err.message})`, { cause: err })
  })
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new KeystoreError(`keystore ${path} is not a plain file: move it away`)
    if ((info.mode & 0o077) !== 0) {
      throw new KeystoreError(`keystore ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`)
    }
    if (info.size > MAX_KEYSTORE_BYTES) throw new KeystoreError(`keystore ${path} is not a Conclave keystore: it is larger than ${MAX_KEYSTORE_BYTES} bytes`)
    const bytes = Buffer.alloc(MAX_KEYSTORE_BYTES + 1)
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0)
    if (bytesRead > MAX_KEYSTORE_BYTES) throw new KeystoreError(`keystore ${path} is not a Conclave keystore: it is larger than ${MAX_KEYSTORE_BYTES} bytes`)
    return bytes.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}
