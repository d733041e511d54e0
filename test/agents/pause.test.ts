import fc from 'fast-check'
import { execFileSync } from 'node:child_process'
import { readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { heldAs, PauseFile, readPause, writePause } from '../../agents/pause.ts'
import { ConfigError } from '../../src/core/errors.ts'
import type { AgentEvent } from '../../src/llm/index.ts'
import { tempDir } from '../federation/helpers.ts'

const round = fc.integer({ min: 1, max: 1000 })
const event: fc.Arbitrary<AgentEvent> = fc.oneof(
  fc.record({ type: fc.constant('round-open' as const), round }),
  fc.record({ type: fc.constant('proposal' as const), round, proposal: fc.stringMatching(/^[0-9a-zA-Z_:-]{8,40}$/), proposer: fc.stringMatching(/^agent-[1-9]$/) })
)

describe('the pause file (paused.json)', () => {
  it('gives back the pause it kept, events and all (the turn under way too), and keeps none once removed', async () => {
    const dir = await tempDir()
    const file = join(dir, 'agent-2', 'paused.json')
    await fc.assert(fc.asyncProperty(fc.array(event, { maxLength: 8 }), fc.option(event, { nil: undefined }), async (held, turn) => {
      const pause = { pausedAt: new Date(0).toISOString(), held, ...(turn === undefined ? {} : { turn }) }
      await writePause(file, pause)
      expect(await readPause(file)).toEqual(pause)
      await writePause(file, undefined)
      expect(await readPause(file)).toBeUndefined()
    }), { seed: 31, numRuns: 200 })
  })

  it('reads whatever else is in the file as a ConfigError naming the file, never as no pause', async () => {
    const dir = await tempDir()
    const file = join(dir, 'paused.json')
    const content = fc.oneof(fc.string(), fc.jsonValue().map(v => JSON.stringify(v)), fc.record({ pausedAt: fc.anything(), held: fc.anything(), turn: fc.anything() }, { requiredKeys: ['pausedAt'] }).map(v => JSON.stringify(v)))
    await fc.assert(fc.asyncProperty(content, async text => {
      await writeFile(file, text)
      const read = await readPause(file).then(p => ({ p }), (err: unknown) => ({ err }))
      if ('err' in read) {
        expect(read.err).toBeInstanceOf(ConfigError)
        expect(String(read.err)).toContain(`${file} is not a pause this agent wrote`)
      } else {
        expect(PauseFile.parse(read.p)).toEqual(read.p)
      }
    }), { seed: 31, numRuns: 1000 })
  })

  it('removing a pause removes that file only', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'notes.txt'), 'mine\n')
    await writePause(join(dir, 'paused.json'), { pausedAt: 'now', held: [] })
    await writePause(join(dir, 'paused.json'), undefined)
    expect(await readdir(dir)).toEqual(['notes.txt'])
  })

  it('holds an event once: a proposal by its block, a round by its number', () => {
    fc.assert(fc.property(event, event, (a, b) => {
      const same = a.type === 'proposal' ? b.type === 'proposal' && a.proposal === b.proposal : b.type === 'round-open' && a.round === b.round
      expect(heldAs(a) === heldAs(b)).toBe(same)
    }), { seed: 31, numRuns: 500 })
  })

  // Found in review: paused.json was read with readIfExists, which waited on a FIFO for good and
  // followed a link, so a planted link made the agent take someone else's pause as its own.
  it('refuses a FIFO at paused.json at once, naming it and what to do, not waiting on it', async () => {
    const file = join(await tempDir(), 'paused.json')
    execFileSync('mkfifo', [file])
    const err = await readPause(file).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ConfigError', message: expect.stringContaining(file) })
    expect(String(err)).toContain('move it away')
  }, 5_000)

  it('refuses a link at paused.json, naming it, and reads nothing through it', async () => {
    const dir = await tempDir()
    const elsewhere = join(dir, 'elsewhere.json')
    await writePause(elsewhere, { pausedAt: 'now', held: [] })
    const file = join(dir, 'paused.json')
    await symlink(elsewhere, file)
    const err = await readPause(file).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ConfigError', message: expect.stringContaining(file) })
    expect(String(err)).toContain('move it away')
  }, 5_000)
})
