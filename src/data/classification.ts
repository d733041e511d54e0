import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { DatasetError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { readDatasetText } from './dataset-file.ts'
import { readJsonlRows } from './jsonl.ts'
import { assertOneSpellingPerLabel, type LabelSite } from './label-spellings.ts'
import { warnTestInTrain } from './overlap.ts'
import { carveDev } from './partition.ts'

/**
 * The longest text an example may have, in UTF-16 code units: 100 000, as a QA answer; about
 * 35 times the longest bundled one (OHSUMED-23: 2 991). Featurising reads every character.
 */
export const MAX_TEXT_CHARS = 100_000
/** The longest label: 256 characters, room for a descriptive label; the bundled ones are codes (C01…). */
export const MAX_LABEL_CHARS = 256
/**
 * The most distinct labels a dataset may have: 1 000 (OHSUMED-23 has 23). Each is one output of
 * the model, so its last layer grows with them (features × labels weights, 8 192 × 1 000 at the
 * defaults), in every update every member sends.
 */
export const MAX_LABELS = 1000

const Label = z.string().min(1).max(MAX_LABEL_CHARS)
const Row = z.object({ id: z.string().optional(), text: z.string().min(1).max(MAX_TEXT_CHARS), label: Label }).loose()
/** `labels.json`: a list of `{ label, name }` or of plain label strings. */
const Labels = z.array(z.union([Label, z.object({ label: Label, name: z.string().max(1000).optional() })]))

export interface Example {
  text: string
  label: number
}

export interface ClassificationData {
  /** Label strings; an example's `label` is an index into this list. */
  labels: string[]
  train: Example[]
  /** From `dev.jsonl`, or carved out of train (and no longer in `train`). */
  dev: Example[]
  test: Example[]
}

export interface LoadClassificationOptions {
  /** Share of train carved out as the dev split when the folder has no `dev.jsonl`. @default 0.1 */
  devFraction?: number
  /** Seed of that carve: a property of the dataset, not of a run. @default 0 */
  seed?: number
  /** Where to warn of test examples whose text is also in train (not an error: some public datasets overlap). */
  logger?: Logger
}

/**
 * A folder with `train.jsonl`, `test.jsonl` ({ id?, text, label } lines), optionally
 * `dev.jsonl` and `labels.json`. Without `labels.json` the labels are train's, sorted.
 */
export async function loadClassification (dir: string, options: LoadClassificationOptions = {}): Promise<ClassificationData> {
  const devFile = join(dir, 'dev.jsonl')
  const hasDev = await access(devFile).then(() => true, () => false)
  const [train, test, dev] = await Promise.all([
    readJsonlRows(join(dir, 'train.jsonl'), Row),
    readJsonlRows(join(dir, 'test.jsonl'), Row),
    hasDev ? readJsonlRows(devFile, Row) : undefined
  ])
  const listed = await readLabels(dir)
  const sites = (rows: typeof train | undefined, split: string): LabelSite[] => (rows ?? []).map(({ line, value }) => ({ label: value.label, where: `${join(dir, `${split}.jsonl`)}:${line}` }))
  assertOneSpellingPerLabel([...(listed ?? []).map(label => ({ label, where: join(dir, 'labels.json') })), ...sites(train, 'train'), ...sites(dev, 'dev'), ...sites(test, 'test')])
  const labels = listed ?? [...new Set(train.map(r => r.value.label))].sort()
  const distinct = new Set(labels).size
  if (distinct > MAX_LABELS) throw new DatasetError(`${join(dir, listed === undefined ? 'train.jsonl' : 'labels.json')} has ${distinct} distinct labels, at most ${MAX_LABELS} allowed`)
  const index = new Map(labels.map((l, i) => [l, i]))
  const convert = (rows: typeof train, split: string): Example[] => rows.map(({ line, value: r }) => {
    const label = index.get(r.label)
    if (label === undefined) throw new DatasetError(`${join(dir, `${split}.jsonl`)}:${line}: unknown label "${r.label}"`)
    return { text: r.text, label }
  })
  warnTestInTrain({ trainFile: join(dir, 'train.jsonl'), testFile: join(dir, 'test.jsonl'), what: 'text', train: train.map(r => r.value.text), test: test.map(r => r.value.text) }, options.logger ?? silentLogger)
  const all = convert(train, 'train')
  if (dev !== undefined) return { labels, train: all, dev: convert(dev, 'dev'), test: convert(test, 'test') }
  const { train: kept, dev: carved } = carveDev(all, options.devFraction ?? 0.1, options.seed ?? 0)
  return { labels, train: kept, dev: carved, test: convert(test, 'test') }
}

/** `labels.json`'s labels; undefined only where there is no such file (any other failure to read it is a DatasetError). */
async function readLabels (dir: string): Promise<string[] | undefined> {
  const text = await readDatasetText(join(dir, 'labels.json'))
  if (text === undefined) return undefined
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  const parsed = Labels.safeParse(json)
  if (!parsed.success) throw new DatasetError(`${join(dir, 'labels.json')} is not a list of labels${json === undefined ? ' (not JSON)' : `: ${parsed.error.issues.slice(0, 3).map(x => `${x.path.join('.') || 'list'} ${x.message}`).join('; ')}`}`, { cause: parsed.error })
  const labels = parsed.data.map(v => typeof v === 'string' ? v : v.label)
  // Each entry is an output of the model: one named twice is an output nothing trains.
  const seen = new Set<string>()
  for (const label of labels) {
    if (seen.has(label)) throw new DatasetError(`${join(dir, 'labels.json')} names "${label.slice(0, 80)}" twice`)
    seen.add(label)
  }
  return labels
}
