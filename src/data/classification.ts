import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { DatasetError } from '../core/errors.ts'
import { readJsonl } from './jsonl.ts'

const Row = z.object({ id: z.string().optional(), text: z.string().min(1), label: z.string().min(1) }).loose()
/** `labels.json`: a list of `{ label, name }` or of plain label strings. */
const Labels = z.array(z.union([z.string(), z.object({ label: z.string(), name: z.string().optional() })]))

export interface Example {
  text: string
  label: number
}

export interface ClassificationData {
  labels: string[]
  train: Example[]
  test: Example[]
}

/** A folder with `train.jsonl`, `test.jsonl` ({ text, label }) and optionally `labels.json`. */
export async function loadClassification (dir: string): Promise<ClassificationData> {
  const [train, test] = await Promise.all([readJsonl(join(dir, 'train.jsonl'), Row), readJsonl(join(dir, 'test.jsonl'), Row)])
  const labels = await readLabels(dir) ?? [...new Set(train.map(r => r.label))].sort()
  const index = new Map(labels.map((l, i) => [l, i]))
  const convert = (rows: typeof train, split: string): Example[] => rows.map((r, i) => {
    const label = index.get(r.label)
    if (label === undefined) throw new DatasetError(`${join(dir, `${split}.jsonl`)}:${i + 1}: unknown label "${r.label}"`)
    return { text: r.text, label }
  })
  return { labels, train: convert(train, 'train'), test: convert(test, 'test') }
}

async function readLabels (dir: string): Promise<string[] | undefined> {
  const text = await readFile(join(dir, 'labels.json'), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  const parsed = Labels.safeParse(json)
  if (!parsed.success) throw new DatasetError(`${join(dir, 'labels.json')} is not a list of labels`)
  return parsed.data.map(v => typeof v === 'string' ? v : v.label)
}
