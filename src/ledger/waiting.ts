import { join } from 'node:path'
import { z } from 'zod'
import { LedgerCorruptError } from '../core/errors.ts'
import { appendSynced, readOwnFile, writeAtomic } from '../core/files.ts'
import type { Logger } from '../core/logger.ts'
import { ReplicaBlock } from '../transport/index.ts'
import { parseJson } from './dag.ts'

/** The file a replica keeps its waiting blocks in, beside its copy. */
export const WAITING_FILE = 'waiting.jsonl'

/** Lines kept beyond twice the blocks still waiting before the file is written anew. */
const SLACK_LINES = 64

/** A line: a block that began to wait, or the id of one that no longer does (kept or refused). */
const Line = z.union([ReplicaBlock, z.object({ gone: z.string() }).strict()])
type Line = z.infer<typeof Line>

const asLines = (lines: readonly Line[]): string => lines.map(line => JSON.stringify(line) + '\n').join('')

/**
 * A replica's blocks that wait for their parents, kept on disk so that a copy restarted before
 * a parent comes still holds them: the bus resumes after them (the Matrix sync token), and a
 * block taken again later, when one approving it has it asked for, lands at another place in
 * this copy's order than in the others'. One JSON line per block that begins to wait, and one
 * naming each that stops (so a block refused while it waited is not taken back); the file is
 * written anew once nothing waits or most of its lines are of blocks that no longer do. Each
 * write is on the disk before it resolves, so it survives a kill or a power cut; the file is a
 * copy's own memory, and what it gives back is checked again as any block.
 */
export class WaitingFile {
  readonly #path: string
  #lines: number
  /** Whether the file is named in its folder on the disk: the first append syncs the folder too. */
  #named: boolean

  private constructor (path: string, lines: number, named: boolean) {
    this.#path = path
    this.#lines = lines
    this.#named = named
  }

  /**
   * Opens `dir`'s file for a copy that writes it, with the blocks still waiting in it, in the
   * order they began to (a line that is neither is logged and left out).
   */
  static async open (dir: string, logger: Logger): Promise<{ file: WaitingFile, blocks: ReplicaBlock[] }> {
    const path = join(dir, WAITING_FILE)
    // Whole, with no cap (up to 256 blocks of each member wait, of up to 16 KiB each), but only a
    // plain file, as this class writes: a link or a FIFO there is neither followed nor waited on.
    const bytes = await readOwnFile(path, { is: 'the file of waiting blocks this copy wrote', error: LedgerCorruptError })
    const text = bytes?.toString('utf8') ?? ''
    const lines = text.split('\n').filter(line => line.length > 0)
    const waiting = new Map<string, ReplicaBlock>()
    for (const line of lines) {
      const parsed = Line.safeParse(parseJson(line))
      if (!parsed.success) logger.warn('left out a line of the waiting blocks that is neither a block nor a block gone', { file: path })
      else if ('gone' in parsed.data) waiting.delete(parsed.data.gone)
      else waiting.set(parsed.data.id, parsed.data)
    }
    const blocks = [...waiting.values()]
    const file = new WaitingFile(path, lines.length, bytes !== undefined)
    // A line a crash cut short would swallow the next one appended after it.
    if (text.length > 0 && !text.endsWith('\n')) await file.#rewrite(blocks)
    return { file, blocks }
  }

  /** Notes a block that begins to wait. */
  async add (block: ReplicaBlock): Promise<void> {
    await this.#append([block])
  }

  /**
   * Notes the blocks that stopped waiting (`gone`); writes the file anew, with `waiting()`, once
   * nothing waits (`count` 0) or most of its lines are of blocks that no longer wait.
   */
  async settle (gone: readonly string[], count: number, waiting: () => ReplicaBlock[]): Promise<void> {
    const lines = this.#lines + gone.length
    if (lines === 0) return
    if (count === 0 || lines > 2 * count + SLACK_LINES) await this.#rewrite(waiting())
    else if (gone.length > 0) await this.#append(gone.map(id => ({ gone: id })))
  }

  // Synced before they resolve: the copy acks a block to the bus once noted, and a power cut
  // must not leave the bus's saved place past a block whose line was lost.
  async #append (lines: readonly Line[]): Promise<void> {
    await appendSynced(this.#path, asLines(lines), { named: !this.#named })
    this.#named = true
    this.#lines += lines.length
  }

  async #rewrite (blocks: readonly ReplicaBlock[]): Promise<void> {
    await writeAtomic(this.#path, asLines(blocks), { sync: true })
    this.#named = true
    this.#lines = blocks.length
  }
}
