import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { loadClassification } from '../../src/data/classification.ts'
import { MAX_DATASET_FILE_BYTES } from '../../src/data/dataset-file.ts'
import { fitTfidf } from '../../src/data/tokenizer.ts'
import { Rng } from '../../src/data/rng.ts'
import { fetchModel } from '../../src/federation/content.ts'
import { readRunConfig } from '../../src/federation/run.ts'
import { predictSoftmax } from '../../src/ml/sparse-softmax.ts'
import { loadTask } from '../../src/ml/task.ts'
import { createHeliaStore } from '../../src/storage/helia.ts'
import { capture } from './capture.ts'
import { tempDir } from './helpers.ts'
import { forgedCheckpointRun } from './forged-checkpoint-run.ts'
import { copyRun, treeOf } from './sealed-run.ts'

const CLASSES = { flu: 'fever cough influenza virus chills', bone: 'fracture bone cast orthopedic splint', skin: 'rash skin itch dermatitis eczema' }

/** A small dataset whose classes share words, so the model gets some wrong and a prediction that differs shows. */
function rows (n: number, seed: number): Array<{ text: string, label: string }> {
  const rng = new Rng(seed)
  const labels = Object.keys(CLASSES) as Array<keyof typeof CLASSES>
  const all = Object.values(CLASSES).join(' ').split(' ')
  return Array.from({ length: n }, (_, i) => {
    const label = labels[i % labels.length] as keyof typeof CLASSES
    const own = CLASSES[label].split(' ')
    const words = [...Array.from({ length: 2 }, () => own[rng.int(own.length)]), ...Array.from({ length: 3 }, () => all[rng.int(all.length)]), 'patient']
    return { text: words.join(' '), label }
  })
}

const jsonl = (values: readonly unknown[]): string => values.map(v => JSON.stringify(v) + '\n').join('')

describe('conclave export and predict', () => {
  let run: string
  let data: string
  let modelHash: string

  beforeAll(async () => {
    data = await tempDir('conclave-export-data-')
    await writeFile(join(data, 'train.jsonl'), jsonl(rows(120, 1)))
    await writeFile(join(data, 'test.jsonl'), jsonl(rows(45, 2)))
    run = join(await tempDir('conclave-export-run-'), 'run')
    const result = await capture(['run', '--agents', '3', '--rounds', '2', '--quorum', 'majority', '--seed', '3', '--data', data, '--out', run])
    expect(result.code).toBe(0)
    modelHash = (JSON.parse(await readFile(join(run, 'report.json'), 'utf8')) as { modelHash: string }).modelHash
  }, 300_000)

  it('exports the final model, which predicts as the run\'s model in-process does, from the export alone', async () => {
    const before = await treeOf(run)
    const out = join(await tempDir('conclave-export-out-'), 'model')
    const exported = await capture(['export', run, '--out', out])
    expect(exported.code).toBe(0)
    // The run directory is only read.
    expect(await treeOf(run)).toEqual(before)
    expect(createHash('sha256').update(await readFile(join(out, 'model.safetensors'))).digest('hex')).toBe(modelHash)
    const card = await readFile(join(out, 'README.md'), 'utf8')
    const audit = JSON.parse((await capture(['audit', run, '--json'])).out) as { head: { id: string } }
    for (const fact of [modelHash, audit.head.id, 'seed | 3', 'agent-3', 'accuracy (test split)']) expect(card).toContain(fact)

    // In-process: the run's final weights, scored by the run's own task, and labelled from the training split's vocabulary.
    const config = await readRunConfig(run)
    const store = await createHeliaStore({ dir: join(run, 'store'), readOnly: true })
    const cid = (JSON.parse(await readFile(join(out, 'predictor.json'), 'utf8')) as { model: { cid: string } }).model.cid
    const weights = await fetchModel(store, { cid, sha256: modelHash }).finally(() => store.close())
    const task = await loadTask(config.task)
    const metric = (await task.evaluate(weights, 'test')).metric
    const dataset = await loadClassification(data)
    const tfidf = fitTfidf(dataset.train.map(e => e.text))
    const shape = { features: tfidf.terms.length, hidden: 32, classes: dataset.labels.length }
    const expected = predictSoftmax(shape, weights, dataset.test.map(e => tfidf.transform(e.text))).map(id => dataset.labels[id])

    // The export alone: the dataset and the run are moved out of reach while it predicts.
    const examples = join(await tempDir('conclave-export-in-'), 'test.jsonl')
    await writeFile(examples, jsonl(dataset.test.map((e, i) => ({ id: `t${i}`, text: e.text }))))
    const away = [data, run]
    for (const dir of away) await rename(dir, `${dir}.away`)
    let result: Awaited<ReturnType<typeof capture>>
    try {
      result = await capture(['predict', out, '--in', examples])
    } finally {
      for (const dir of away) await rename(`${dir}.away`, dir)
    }
    expect(result.code).toBe(0)
    const predicted = result.out.trim().split('\n').map(l => JSON.parse(l) as { line: number, id: string, label: string })
    expect(predicted.map(p => p.label)).toEqual(expected)
    expect(predicted.map(p => p.id)).toEqual(dataset.test.map((_, i) => `t${i}`))
    const accuracy = predicted.filter((p, i) => p.label === dataset.labels[dataset.test[i]?.label as number]).length / predicted.length
    expect(accuracy).toBe(metric)
    expect(new Set(expected).size).toBeGreaterThan(1)
  }, 300_000)

  it('exports an earlier round on request: round 0 is the charter\'s initial model', async () => {
    const out = join(await tempDir('conclave-export-out-'), 'initial')
    expect((await capture(['export', run, '--round', '0', '--out', out])).code).toBe(0)
    const exported = JSON.parse(await readFile(join(out, 'predictor.json'), 'utf8')) as { model: { round: number, sha256: string } }
    expect(exported.model.round).toBe(0)
    expect(exported.model.sha256).not.toBe(modelHash)
    expect(createHash('sha256').update(await readFile(join(out, 'model.safetensors'))).digest('hex')).toBe(exported.model.sha256)
    expect((await capture(['export', run, '--round', '9', '--out', join(out, '..', 'r9')])).err).toMatch(/NoCheckpointError/)
  }, 120_000)

  // Found red-teaming: report.json is not sealed (a run rewrites it), and a FIFO planted there hung export after its audit passed.
  it('exports a run whose report.json is a FIFO: it is no report, not a wait for a writer', async () => {
    const copy = await copyRun(run)
    await rm(join(copy, 'report.json'))
    execFileSync('mkfifo', [join(copy, 'report.json')])
    const out = join(await tempDir('conclave-export-out-'), 'fifo')
    expect((await capture(['export', copy, '--out', out])).code).toBe(0)
    expect((JSON.parse(await readFile(join(out, 'predictor.json'), 'utf8')) as { model: { sha256: string } }).model.sha256).toBe(modelHash)
  }, 120_000)

  it('refuses what is not an audited run, and never writes into a directory it did not make', async () => {
    const parent = await tempDir('conclave-export-out-')
    const bad = await capture(['export', join(parent, 'nothing'), '--out', join(parent, 'a')])
    expect(bad.code).toBe(1)
    expect(bad.err).toMatch(/ConfigError \(ERR_CONFIG\)/)

    // A run whose audit fails (its manifest is gone) is refused, and nothing is made.
    const damaged = await copyRun(run)
    await rm(join(damaged, 'manifest.json'))
    const failing = await capture(['export', damaged, '--out', join(parent, 'b')])
    expect(failing.code).toBe(1)
    expect(failing.err).toMatch(/AuditFailedError \(ERR_AUDIT_FAILED\)/)
    await expect(readFile(join(parent, 'b', 'README.md'))).rejects.toThrow()

    // A dataset changed since the run would fit another vocabulary under the same weights: refused.
    const train = await readFile(join(data, 'train.jsonl'))
    await writeFile(join(data, 'train.jsonl'), Buffer.concat([train, Buffer.from(jsonl(Array.from({ length: 40 }, () => ({ text: 'eczema splint chills', label: 'skin' }))))]))
    try {
      expect((await capture(['export', run, '--out', join(parent, 'changed')])).err).toMatch(/DatasetError \(ERR_DATASET\)/)
    } finally {
      await writeFile(join(data, 'train.jsonl'), train)
    }

    // A directory holding anything an export did not make is left alone.
    const foreign = join(parent, 'c')
    await mkdir(foreign)
    await writeFile(join(foreign, 'notes.txt'), 'mine')
    expect((await capture(['export', run, '--out', foreign])).err).toMatch(/RunDirectoryError/)
    expect(await treeOf(foreign)).toEqual([`notes.txt ${createHash('sha256').update('mine').digest('hex')}`])

    // An earlier export is replaced only with --force; the run directory is never an --out.
    const earlier = join(parent, 'd')
    expect((await capture(['export', run, '--out', earlier])).code).toBe(0)
    expect((await capture(['export', run, '--out', earlier])).err).toMatch(/RunDirectoryError/)
    expect((await capture(['export', run, '--out', earlier, '--force'])).code).toBe(0)
    // Nor does --force remove a model card someone rewrote since: it names it, and it stays.
    await writeFile(join(earlier, 'README.md'), 'my own notes on this model')
    expect((await capture(['export', run, '--out', earlier, '--force'])).err).toMatch(/RunDirectoryError.*"README\.md"/)
    expect(await readFile(join(earlier, 'README.md'), 'utf8')).toBe('my own notes on this model')
    // An export killed as it noted its files leaves the marker's half-written copy: --force takes that.
    await rm(join(earlier, 'README.md'))
    await writeFile(join(earlier, '.conclave-export.tmp'), '{"conclave":"exp')
    expect((await capture(['export', run, '--out', earlier, '--force'])).code).toBe(0)
    expect((await capture(['export', run, '--out', join(run, 'model')])).err).toMatch(/ConfigError/)
  }, 300_000)

  // Found red-teaming: the check that --out is not inside the run directory compared the paths as
  // written, so an --out reached through a link (`models -> RUN/store`) passed it: the export went
  // into the run's sealed store, whose audit then failed on the stray files (StrayFileError).
  it('refuses an --out that leads into the run directory through a link, and writes nothing there', async () => {
    const copy = await copyRun(run)
    const base = await tempDir('conclave-export-link-')
    await symlink(join(copy, 'store'), join(base, 'models'))
    await symlink(copy, join(base, 'alias'))
    const before = await treeOf(copy)
    for (const out of ['models/final', 'models/a/b', 'models', 'alias/model', 'alias']) {
      expect((await capture(['export', copy, '--out', join(base, out)])).err, out).toMatch(/ConfigError \(ERR_CONFIG\)/)
    }
    expect(await treeOf(copy)).toEqual(before)
    expect((await capture(['audit', copy])).code).toBe(0)
  }, 120_000)

  // Found red-teaming: `export --force` removed the earlier export before it loaded the dataset
  // and scored the model, so an export that then failed (the dataset moved away) left only the
  // marker; and a failed export to a new folder left the folder behind, half made.
  it('an export that fails leaves an earlier export as it was, and makes no folder where there was none', async () => {
    const parent = await tempDir('conclave-export-out-')
    const earlier = join(parent, 'model')
    expect((await capture(['export', run, '--out', earlier])).code).toBe(0)
    const before = await treeOf(earlier)
    await rename(data, `${data}.away`)
    try {
      expect((await capture(['export', run, '--out', earlier, '--force'])).err).toMatch(/DatasetError \(ERR_DATASET\)/)
      expect((await capture(['export', run, '--out', join(parent, 'fresh')])).err).toMatch(/DatasetError \(ERR_DATASET\)/)
    } finally {
      await rename(`${data}.away`, data)
    }
    expect(await treeOf(earlier)).toEqual(before)
    expect(await readdir(parent)).toEqual(['model'])
    // With its dataset back, --force replaces it, and leaves nothing beside it.
    expect((await capture(['export', run, '--out', earlier, '--force'])).code).toBe(0)
    expect(await treeOf(earlier)).toEqual(before)
    expect(await readdir(parent)).toEqual(['model'])
  }, 300_000)

  it('predict names each bad line, loses no good one, and refuses a model that is not the one exported', async () => {
    const out = join(await tempDir('conclave-export-out-'), 'model')
    expect((await capture(['export', run, '--out', out])).code).toBe(0)
    const input = join(out, '..', 'in.jsonl')
    await writeFile(input, '{"id":"a","text":"rash itch"}\nnot json\n{"id":"b"}\n\n{"id":"c","text":"bone cast"}\n')
    const result = await capture(['predict', out, '--in', input])
    expect(result.code).toBe(1)
    expect(result.out.trim().split('\n').map(l => (JSON.parse(l) as { line: number, id: string }))).toMatchObject([{ line: 1, id: 'a' }, { line: 5, id: 'c' }])
    expect(result.err).toMatch(/in\.jsonl:2: not JSON/)
    expect(result.err).toMatch(/in\.jsonl:3: text /)
    expect(result.err).toMatch(/2 predicted, 2 refused/)

    // --out never overwrites a file.
    const existing = join(out, '..', 'predictions.jsonl')
    await writeFile(existing, 'kept\n')
    expect((await capture(['predict', out, '--in', input, '--out', existing])).err).toMatch(/ConfigError.*exists/)
    expect(await readFile(existing, 'utf8')).toBe('kept\n')

    // Weights swapped under the export are refused before use.
    const bytes = await readFile(join(out, 'model.safetensors'))
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
    await writeFile(join(out, 'model.safetensors'), bytes)
    expect((await capture(['predict', out, '--in', input])).err).toMatch(/ContentMismatchError/)
    expect((await capture(['predict', run, '--in', input])).err).toMatch(/ConfigError.*not a Conclave export/)
  }, 120_000)

  // Found red-teaming: predict read predictor.json and model.safetensors with a plain read, so a
  // FIFO there (a tar carries one) hung it, and a link to /dev/zero would have filled its memory.
  it('predict refuses an export whose predictor.json or model.safetensors is a FIFO or a link, at once and by name', async () => {
    const input = join(await tempDir('conclave-export-in-'), 'in.jsonl')
    await writeFile(input, '{"id":"a","text":"rash itch"}\n')
    for (const [file, plant] of [['predictor.json', 'fifo'], ['model.safetensors', 'fifo'], ['model.safetensors', '/dev/zero'], ['predictor.json', '/dev/zero']] as const) {
      const out = join(await tempDir('conclave-export-out-'), 'model')
      expect((await capture(['export', run, '--out', out])).code).toBe(0)
      await rm(join(out, file))
      if (plant === 'fifo') execFileSync('mkfifo', [join(out, file)])
      else await symlink(plant, join(out, file))
      const result = await capture(['predict', out, '--in', input])
      expect(result.code).toBe(1)
      expect(result.err).toMatch(new RegExp(`StrayFileError.*${file.replace('.', '\\.')}`))
    }
  }, 120_000)

  // Found red-teaming: predict buffered all of stdin (and all of --in) before reading a line, so an
  // endless pipe filled its memory. Refused past what a dataset file may hold, having read no more.
  it('predict refuses input larger than a dataset file may be, from stdin or --in, before reading it all', async () => {
    const out = join(await tempDir('conclave-export-out-'), 'model')
    expect((await capture(['export', run, '--out', out])).code).toBe(0)
    const chunk = Buffer.alloc(2 ** 20, '{"text":"rash itch"}\n')
    let pulled = 0
    const stdin = vi.spyOn(process, 'stdin', 'get').mockReturnValue(Readable.from((function * () {
      for (let i = 0; i < 2 * MAX_DATASET_FILE_BYTES / chunk.length; i++) { pulled += chunk.length; yield chunk }
    })()) as typeof process.stdin)
    try {
      const result = await capture(['predict', out])
      expect(result).toMatchObject({ code: 1, out: '' })
      expect(result.err).toMatch(/PayloadTooLargeError.*stdin/)
      expect(pulled).toBeLessThanOrEqual(MAX_DATASET_FILE_BYTES + 2 * chunk.length)
    } finally {
      stdin.mockRestore()
    }
    const input = join(out, '..', 'huge.jsonl')
    await writeFile(input, '')
    await truncate(input, MAX_DATASET_FILE_BYTES + 1) // sparse: no disk taken
    const result = await capture(['predict', out, '--in', input])
    expect(result).toMatchObject({ code: 1, out: '' })
    expect(result.err).toMatch(/PayloadTooLargeError.*huge\.jsonl/)
  }, 120_000)
})

// Found red-teaming: the model card wrapped a dataset's labels in single backticks, so a label
// holding one closed the code span and put its HTML and links into the card; a line break in one
// started an HTML block. And the card named the dataset by its absolute local path.
describe('the model card of a run whose dataset has hostile labels', () => {
  const HOSTILE = 'flu` <img src=x onerror=alert(1)> [click](javascript:alert(1)) `x'
  const LABELS = [HOSTILE, '`bone', 'skin\n\n<script>alert(1)</script>']

  it('shows each label as code, whatever backticks or line breaks it holds, and the dataset by its folder\'s name only', async () => {
    const data = await tempDir('conclave-export-data-')
    const rows = (n: number, offset: number): string => jsonl(Array.from({ length: n }, (_, i) => {
      const label = (i + offset) % 3
      return { text: `${Object.values(CLASSES)[label]} patient case ${i}`, label: LABELS[label] }
    }))
    await writeFile(join(data, 'train.jsonl'), rows(90, 0))
    await writeFile(join(data, 'test.jsonl'), rows(30, 1))
    const run = join(await tempDir('conclave-export-run-'), 'run')
    expect((await capture(['run', '--agents', '3', '--rounds', '1', '--quorum', 'majority', '--data', data, '--out', run])).code).toBe(0)
    const out = join(await tempDir('conclave-export-out-'), 'model')
    expect((await capture(['export', run, '--out', out])).code).toBe(0)
    const card = await readFile(join(out, 'README.md'), 'utf8')
    expect(card).toContain('``' + HOSTILE + '``')
    expect(card).toContain('`` `bone ``')
    expect(card).toContain('`skin  <script>alert(1)</script>`')
    // Nothing from the dataset starts a line of its own (an HTML block, a heading).
    expect(card.split('\n').filter(line => /^ {0,3}[<#]/.test(line) && !line.startsWith('# ') && !line.startsWith('## '))).toEqual([])
    expect(card).not.toContain(data)
    expect(card).toContain(`(data: \`${basename(data)}\`)`)
  }, 300_000)
})

// Found red-teaming: export took each round's checkpoint as the records applied without deriving
// the merges, so a recorder's made-up model kept the right checkpoint after it out, and export
// refused a run whose audit passes ("the last checkpoint is not the model the audit replayed").
describe('conclave export of a run whose recorder anchored a made-up model before the right one', () => {
  it('exports the right one, the model the audit replays', async () => {
    const forged = await forgedCheckpointRun({ sealed: true })
    const out = join(await tempDir('conclave-export-out-'), 'forged')
    const result = await capture(['export', forged.dir, '--out', out])
    expect(result.err).not.toMatch(/Error/)
    expect(result.code).toBe(0)
    const exported = JSON.parse(await readFile(join(out, 'predictor.json'), 'utf8')) as { model: { round: number, sha256: string } }
    expect(exported.model).toMatchObject({ round: 1, sha256: forged.model })
  }, 120_000)
})
