import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { DatasetError } from '../core/errors.ts'
import { readDatasetText } from './dataset-file.ts'
import { readJsonlRows } from './jsonl.ts'
import { carveDev } from './partition.ts'

const Row = z.object({ id: z.string().optional(), text: z.string().min(1), label: z.string().min(1) }).loose()
/** `labels.json`: a list of `{ label, name }` or of plain label strings. */
const Labels = z.array(z.union([z.string(), z.object({ label: z.string(), name: z.string().optional() })]))

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
  const labels = await readLabels(dir) ?? [...new Set(train.map(r => r.value.label))].sort()
  const index = new Map(labels.map((l, i) => [l, i]))
  const convert = (rows: typeof train, split: string): Example[] => rows.map(({ line, value: r }) => {
    const label = index.get(r.label)
    if (label === undefined) throw new DatasetError(`${join(dir, `${split}.jsonl`)}:${line}: unknown label "${r.label}"`)
    return { text: r.text, label }
  })
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
  if (!parsed.success) throw new DatasetError(`${join(dir, 'labels.json')} is not a list of labels`)
  return parsed.data.map(v => typeof v === 'string' ? v : v.label)
}
