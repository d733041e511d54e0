import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.ts'
import { matrixClient } from '../../src/transport/matrix/requests.ts'
import { roomDirectory } from '../../src/transport/matrix/rooms.ts'
import { newMatrixUser, synapseUrl, uniqueName } from './synapse.ts'

/**
 * Members that start together open their room together: one creates it, the others join it.
 * Synapse gives a new room its alias before its creator is in it, and a join in between is
 * answered 404 "no servers that are in the room have been provided" (seen as a member that
 * failed to start in members.int); every account must still end in the one room.
 */
describe('members opening one room at once (Synapse)', () => {
  it('all end in the same room, whoever created it, in every one of several tries', async () => {
    const accounts = await Promise.all(Array.from({ length: 6 }, async () => newMatrixUser('racer')))
    const invite = accounts.map(a => a.userId)
    const closing = new AbortController()
    const directories = accounts.map(a => roomDirectory(matrixClient({ baseUrl: synapseUrl, ...a, pollMs: 1000, logger: silentLogger }), 'localhost', { invite }, closing.signal))
    for (let attempt = 0; attempt < 12; attempt++) {
      const room = uniqueName('race')
      const ids = await Promise.all(directories.map(async open => open(room)))
      expect(new Set(ids).size).toBe(1)
    }
  }, 120_000)
})
