import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRunDir } from '../../src/cli/audit-dir.ts'
import { roundTable, RunReport } from '../../src/federation/report.ts'
import { runFederation } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

describe('conclave run → audit, end to end on the embedded engines', () => {
  it('runs rounds, writes a report with per-phase times, and the audit re-derives the model', async () => {
    const out = await tempDir()
    const report = await runFederation(smallConfig(), { out })
    expect(report.rounds.map(r => r.round)).toEqual([0, 1, 2])
    for (const round of report.rounds.slice(1)) {
      expect(round.proposals).toBe(3)
      expect(round.accepts + round.rejects).toBe(3)
      expect(round.modelVotes).toBe(0) // the autopilot: the policy decided every vote, and the votes say so
      expect(Object.keys(round.phases)).toEqual(['model', 'distill', 'train', 'publish', 'anchor', 'announce', 'fetchVerify', 'evaluate', 'vote', 'merge'])
      expect(round.phases.train).toBeGreaterThan(0)
      expect(round.peakRssMiB).toBeGreaterThan(0)
    }
    const onDisk = RunReport.parse(JSON.parse(await readFile(join(out, 'report.json'), 'utf8')))
    expect(onDisk.modelHash).toBe(report.modelHash)
    const markdown = await readFile(join(out, 'report.md'), 'utf8')
    for (const plot of ['learning-curve.svg', 'votes.svg', 'reputation.svg']) {
      expect(markdown).toContain(`](${plot})`)
      expect(await readFile(join(out, plot), 'utf8')).toMatch(/^<svg/)
    }
    expect(roundTable(onDisk).split('\n')[3]).toMatch(/^\| 1 \| 3 \| \d \| \d \| 0% \|/)

    const audit = await auditRunDir(out)
    expect(audit).toMatchObject({ ok: true, proposals: 6, votes: 12, decisions: 6, checkpoints: 2, modelHash: report.modelHash, firstFailure: null, rejected: [] })
  })

  it('ends with the same global model hash for the same seed, and a different one for another seed', async () => {
    const [a, b, c] = await Promise.all([tempDir(), tempDir(), tempDir()])
    const first = await runFederation(smallConfig({ rounds: 1 }), { out: a })
    const second = await runFederation(smallConfig({ rounds: 1 }), { out: b })
    const other = await runFederation(smallConfig({ rounds: 1, seed: 8 }), { out: c })
    expect(second.modelHash).toBe(first.modelHash)
    expect(other.modelHash).not.toBe(first.modelHash)
  })

  it('fails the audit and names the record when any byte of the ledger or a stored block flips', async () => {
    const out = await tempDir()
    await runFederation(smallConfig({ rounds: 1 }), { out })
    expect((await auditRunDir(out)).ok).toBe(true)

    const ledgerFile = join(out, 'ledger', 'tangle.jsonl')
    const original = await readFile(ledgerFile)
    const lines = original.toString().split('\n')
    // Line 0 is the header (difficulty); block `seq` is on line seq + 1. One position per
    // line, spread over the file: each flip must be caught and the block named.
    let offset = 0
    for (const [index, line] of lines.entries()) {
      if (line.length === 0) continue
      const flipped = Buffer.from(original)
      const at = offset + Math.floor(line.length * ((index * 0.37) % 1))
      flipped[at] = (flipped[at] as number) ^ 0x01
      await writeFile(ledgerFile, flipped)
      const audit = await auditRunDir(out)
      expect(audit.ok, `flip at byte ${at} (line ${index})`).toBe(false)
      expect(audit.firstFailure?.seq).toBe(Math.max(0, index - 1))
      offset += line.length + 1
    }
    await writeFile(ledgerFile, original)
    expect((await auditRunDir(out)).ok).toBe(true)

    const blocksDir = join(out, 'store', 'blocks')
    const blockFiles = await listFiles(blocksDir)
    expect(blockFiles.length).toBeGreaterThan(0)
    for (const file of blockFiles) {
      const bytes = await readFile(file)
      const flipped = Buffer.from(bytes)
      const at = Math.floor(bytes.length / 2)
      flipped[at] = (flipped[at] as number) ^ 0x80
      await writeFile(file, flipped)
      const audit = await auditRunDir(out)
      expect(audit.ok, `flip in ${file}`).toBe(false)
      expect(audit.firstFailure?.error.name).toBe('ContentMismatchError')
      expect(audit.firstFailure?.type, 'the record that points at the block is named').not.toBeNull()
      await writeFile(file, bytes)
    }
    expect((await auditRunDir(out)).ok).toBe(true)
  })
})

async function listFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile()).map(e => join(e.parentPath, e.name))
}
