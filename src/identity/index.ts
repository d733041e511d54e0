export { createIdentity, type Identity, type SignOptions } from './identity.ts'
export { loadOrCreateKeystore } from './keystore.ts'
export { verifyRecord, peekRecord, NonceRegistry, type VerifyOptions } from './verify.ts'
export { didFromPublicKey } from './did-key.ts'
