import { readFileSync } from 'node:fs'
import { registerWithSharedSecret } from '../../src/transport/matrix-admin.ts'

/** The Synapse that test/integration/setup.ts started (scripts/services/synapse.sh). */
export const synapseUrl = `http://127.0.0.1:${process.env.SYNAPSE_PORT ?? '8008'}`

/** A unique, lower-case name with `prefix`, for users, rooms and federations that must not collide across runs. */
export function uniqueName (prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

/** That Synapse's registration shared secret (what `bus.registrationSecret` takes). */
export function registrationSecret (): string {
  return readFileSync('.services/synapse/shared-secret', 'utf8').trim()
}

/** A fresh account on that Synapse, registered through its shared secret. */
export async function newMatrixUser (prefix = 'agent', admin = false): Promise<{ userId: string, accessToken: string }> {
  return registerWithSharedSecret(synapseUrl, registrationSecret(), uniqueName(prefix), `pw-${Math.random().toString(36)}`, admin)
}
