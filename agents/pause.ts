import { rm } from 'node:fs/promises'
import { z } from 'zod'
import { AgentPausedError, ConfigError } from '../src/core/errors.ts'
import { readOwnFile, writeAtomic } from '../src/core/files.ts'
import { AgentEvent } from '../src/llm/events.ts'

/**
 * A researcher's `!pause` as the agent's tools see it: while it lasts every tool call is
 * refused, so a turn under way when it came takes no further action; `settled` waits for
 * the calls that were already running, after which the agent does nothing until `!resume`.
 */
export class Pause {
  /** True from `!pause` until `!resume`. */
  on = false
  readonly #agent: string
  readonly #running = new Set<Promise<unknown>>()

  constructor (agent: string) { this.#agent = agent }

  /** Runs a tool call, or refuses it while paused. */
  readonly guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (this.on) throw new AgentPausedError(`${this.#agent} is paused: it takes no action until !resume`)
    const running = call()
    this.#running.add(running)
    try {
      return await running
    } finally {
      this.#running.delete(running)
    }
  }

  /** Resolves once every tool call running now has ended, however it ended. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.#running])
  }
}

/**
 * What `paused.json` keeps: when the pause came, the events it holds (a file of an older
 * version holds none), and the event whose turn was under way, until that turn has ended and
 * holds it: a process killed in between still owes it.
 */
export const PauseFile = z.object({ pausedAt: z.string(), held: z.array(AgentEvent).default([]), turn: AgentEvent.optional() }).strict()
export type PauseFile = z.infer<typeof PauseFile>

/**
 * Most bytes a pause file may take: an event is ~200 bytes, so ~300 000 held events, far more
 * than any pause holds (an event a round and a proposal).
 */
export const MAX_PAUSE_BYTES = 64 << 20

/**
 * The pause kept in `file`, or undefined with none; a file that is not one is a clear error, never
 * taken as no pause. Only a plain file is read (writePause writes one): a link, a FIFO or a folder
 * there is a ConfigError naming it, at once.
 */
export async function readPause (file: string): Promise<PauseFile | undefined> {
  const bytes = await readOwnFile(file, { is: 'a pause this agent wrote', error: ConfigError, maxBytes: MAX_PAUSE_BYTES, then: ' to unpause' })
  if (bytes === undefined) return undefined
  let json: unknown
  try { json = JSON.parse(bytes.toString('utf8')) } catch { json = undefined }
  const parsed = PauseFile.safeParse(json)
  if (!parsed.success) throw new ConfigError(`${file} is not a pause this agent wrote (${z.prettifyError(parsed.error)}): remove it to unpause, or fix it`)
  return parsed.data
}

/**
 * Keeps the pause in `file` (no secret in it), or removes the file once there is none. Written
 * beside and renamed over: an agent killed mid-write leaves the old pause or the new one, never
 * a torn file that would stop it from starting again.
 */
export async function writePause (file: string, pause: PauseFile | undefined): Promise<void> {
  if (pause === undefined) return rm(file, { force: true })
  await writeAtomic(file, JSON.stringify(pause) + '\n')
}

/** What an event asks of an agent, once: the same proposal's vote, or the same round's proposal. */
export function heldAs (event: AgentEvent): string {
  return event.type === 'proposal' ? `vote ${event.proposal}` : `propose ${event.round}`
}
