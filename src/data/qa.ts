import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { silentLogger, type Logger } from '../core/logger.ts'
import { readJsonl } from './jsonl.ts'
import { warnTestInTrain } from './overlap.ts'
import { carveDev } from './partition.ts'

const Row = z.object({
  id: z.string().optional(),
  question: z.string().trim().min(1).max(4000),
  answer: z.string().trim().min(1).max(100_000),
  /** The question's type (MedQuAD: treatment, symptoms…); non-IID partitions deal by it. */
  qtype: z.string().min(1).optional(),
  /** What the question is about; a dev carve keeps each focus on one side. */
  focus: z.string().optional()
}).loose()

export interface QaPair {
  question: string
  /** The dataset's answer: what the embedded dataset teacher says, and the test reference. */
  answer: string
  /** Index into `QaData.qtypes`. */
  qtype: number
  focus: string
}

export interface QaData {
  qtypes: string[]
  train: QaPair[]
  /** From `dev.jsonl`, or whole foci carved out of train (and no longer in `train`). */
  dev: QaPair[]
  test: QaPair[]
}

/**
 * A folder with `train.jsonl` and `test.jsonl` of `{ question, answer, qtype?, focus? }`
 * lines (MedQuAD's shape), optionally `dev.jsonl`. Bad lines are named with their line number;
 * test questions also in train are loaded, with one warning to `options.logger` that counts them.
 */
export async function loadQa (dir: string, options: { devFraction?: number, seed?: number, logger?: Logger } = {}): Promise<QaData> {
  const devFile = join(dir, 'dev.jsonl')
  const hasDev = await access(devFile).then(() => true, () => false)
  const [train, test, dev] = await Promise.all([readJsonl(join(dir, 'train.jsonl'), Row), readJsonl(join(dir, 'test.jsonl'), Row), hasDev ? readJsonl(devFile, Row) : undefined])
  warnTestInTrain({ trainFile: join(dir, 'train.jsonl'), testFile: join(dir, 'test.jsonl'), what: 'question', train: train.map(r => r.question), test: test.map(r => r.question) }, options.logger ?? silentLogger)
  const qtypes = [...new Set(train.map(r => r.qtype ?? 'any'))].sort()
  const index = new Map(qtypes.map((q, i) => [q, i]))
  // A qtype train never saw joins the first: it only steers non-IID partitions.
  const convert = (rows: typeof train): QaPair[] => rows.map(r => ({ question: r.question, answer: r.answer, qtype: index.get(r.qtype ?? 'any') ?? 0, focus: (r.focus === undefined || r.focus === '' ? r.question : r.focus).toLowerCase() }))
  const all = convert(train)
  if (dev !== undefined) return { qtypes, train: all, dev: convert(dev), test: convert(test) }
  const carved = carveDev(all, options.devFraction ?? 0.1, options.seed ?? 0, p => p.focus)
  return { qtypes, ...carved, test: convert(test) }
}
