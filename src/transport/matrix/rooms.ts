import { setTimeout as pause } from 'node:timers/promises'
import { MatrixError, Method, type MatrixClient } from 'matrix-js-sdk'
import { BackendUnavailableError, ConfigError, InvalidRecordError } from '../../core/errors.ts'
import { RoomId } from '../index.ts'
import { request } from './requests.ts'

/** How long to wait for a room being created to open its doors (its join rule, its invites). */
const JOIN_RULE_MS = 300

/** How a room this bus creates is set up. */
export interface RoomSettings {
  /** Accounts invited when it is created: the other members' and the researchers'. @default none */
  invite?: readonly string[]
  /** Anyone may join and read it. @default false: invite-only */
  public?: boolean
}

/**
 * Bus rooms and the Matrix rooms behind them: bus room `r` is the room with alias
 * `#r:<server>`, joined if it exists and created if not (invite-only unless `settings`
 * make it public), each looked up once (a failed look-up is tried again next time).
 * `signal` cancels the waits.
 */
export function roomDirectory (client: MatrixClient, server: string, settings: RoomSettings, signal: AbortSignal): (room: string) => Promise<string> {
  const ids = new Map<string, Promise<string>>()
  return async (room) => {
    if (!RoomId.safeParse(room).success) throw new InvalidRecordError(`"${room}" is not a room id`)
    let id = ids.get(room)
    if (id === undefined) {
      id = ensureRoom(client, `#${room}:${server}`, room, settings, signal)
      ids.set(room, id)
      id.catch(() => ids.delete(room))
    }
    return id
  }
}

/**
 * Invites those of `invite` who are neither in the room nor invited: a room an earlier run
 * created knows only the accounts and researchers that run listed.
 */
async function inviteMissing (client: MatrixClient, roomId: string, invite: readonly string[], signal: AbortSignal): Promise<void> {
  if (invite.length === 0) return
  const { chunk } = await request(() => client.http.authedRequest<{ chunk: Array<{ state_key: string, content: { membership?: string } }> }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/members`), { signal })
  const present = new Set(chunk.filter(e => e.content.membership === 'join' || e.content.membership === 'invite').map(e => e.state_key))
  for (const user of new Set(invite)) {
    // Where this member may not invite (or the user is banned), it is left to those who may.
    if (!present.has(user)) await request(() => client.invite(roomId, user), { signal }).catch((err: unknown) => { if (!(err instanceof MatrixError && err.errcode === 'M_FORBIDDEN')) throw err })
  }
}

/** The room behind `alias`: joined if it exists (inviting whoever `settings` lists and it lacks), created (and joined) if not. */
async function ensureRoom (client: MatrixClient, alias: string, room: string, settings: RoomSettings, signal: AbortSignal): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const { room_id: id } = await request(() => client.getRoomIdForAlias(alias), { signal })
      await request(() => client.joinRoom(id), { signal })
      await inviteMissing(client, id, settings.invite ?? [], signal)
      return id
    } catch (err) {
      // A room being created has its alias before its creator, its join rule and its invites: wait for them.
      // (Before its creator is in it, Synapse answers a join 404 M_UNKNOWN: no server in the room is known.)
      if (err instanceof MatrixError && (err.errcode === 'M_FORBIDDEN' || (err.errcode === 'M_UNKNOWN' && err.httpStatus === 404))) {
        if (attempt === 9 && err.errcode === 'M_FORBIDDEN') throw new ConfigError(`${client.getUserId() ?? 'this account'} may not join ${alias}: the room is invite-only and nobody invited it (list every member's account in bus.accounts, or register them with bus.registrationSecret)`, { cause: err })
        await pause(JOIN_RULE_MS, undefined, { signal })
        continue
      }
      if (!(err instanceof MatrixError && err.errcode === 'M_NOT_FOUND')) throw err
    }
    try {
      const me = client.getUserId()
      const invite = [...new Set(settings.invite ?? [])].filter(u => u !== me)
      const { room_id: id } = await request(() => client.createRoom({
        room_alias_name: room,
        name: `Conclave: ${room}`,
        invite,
        ...(settings.public === true
          // Open for reading: anyone joins, and the history shows to people who have not joined.
          ? { preset: 'public_chat' as never, initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }] }
          : { preset: 'private_chat' as never })
      }), { signal })
      return id
    } catch (err) {
      // Someone created it meanwhile: join it. Synapse says M_ROOM_IN_USE when the alias was
      // there before; 409 M_UNKNOWN ("already exists") when a concurrent creation won the race.
      if (!(err instanceof MatrixError && (err.errcode === 'M_ROOM_IN_USE' || err.httpStatus === 409))) throw err
    }
  }
  throw new BackendUnavailableError(`could not create or join ${alias}`)
}
