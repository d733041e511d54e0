import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { registerWithSharedSecret } from '../../src/transport/matrix-admin.ts'

/** The Synapse that test/integration/setup.ts started (scripts/services/synapse.sh). */
export const synapseUrl = `http://127.0.0.1:${process.env.SYNAPSE_PORT ?? '8008'}`

/**
 * Stops and starts that Synapse, as an operator would. It outlives the test run, so it gets the
 * machine's temporary directory, not the run's (test/scratch-tmpdir.ts removes that at the end).
 */
export function restartSynapse (): void {
  const env = { ...process.env, TMPDIR: process.env.CONCLAVE_MACHINE_TMPDIR ?? process.env.TMPDIR }
  execFileSync('scripts/services/synapse.sh', ['down'], { stdio: 'inherit', env })
  execFileSync('scripts/services/synapse.sh', ['up'], { stdio: 'inherit', env })
}

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

export interface RoomEvent { type: string, event_id: string, sender: string, content: Record<string, unknown> }

/** A person's Matrix client, as matrix-nio or Element would talk to the homeserver. */
export function client (account: { accessToken: string }) {
  const call = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${synapseUrl}${path}`, { method, headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await call(method, path, body)
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
    return r.json() as Promise<T>
  }
  let n = 0
  return {
    call,
    json,
    send: async (roomId: string, content: Record<string, unknown>): Promise<string> =>
      (await json<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t-${Date.now()}-${n++}`, content)).event_id,
    messages: async (roomId: string): Promise<RoomEvent[]> =>
      (await json<{ chunk: RoomEvent[] }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=1000`)).chunk.reverse(),
    relations: async (roomId: string, event: string, type: 'm.thread' | 'm.annotation'): Promise<RoomEvent[]> =>
      (await json<{ chunk: RoomEvent[] }>('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(event)}/${type}?limit=100`)).chunk
  }
}

export async function until (check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!await check()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}
