import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ConclaveError, ConfigError } from '../core/errors.ts'
import { readStreamCapped } from '../core/files.ts'
import { MAX_DATASET_FILE_BYTES } from '../data/dataset-file.ts'
import { exportRun } from './export-dir.ts'
import { loadExport, predictJsonl } from './predict-dir.ts'
import { parseFlags } from './flags.ts'

/** `conclave export DIR [--round R] --out DIR2 [--force]`: the round's global model, ready to use without the run. */
export async function exportCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    options: { out: { type: 'string' }, round: { type: 'string' }, force: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length !== 1 || values.out === undefined) throw new ConfigError('usage: conclave export DIR [--round R] --out DIR2 [--force]')
  if (values.round !== undefined && !/^\d+$/.test(values.round)) throw new ConfigError(`--round must be a whole number, not "${values.round}"`)
  const result = await exportRun(resolve(positionals[0] as string), { out: values.out, round: values.round === undefined ? undefined : Number(values.round), force: values.force })
  process.stdout.write(`exported round ${result.round}: model sha-256 ${result.modelHash}, ${result.metric.name} ${result.metric.value.toFixed(4)} (${result.metric.split}), ledger head ${result.head} → ${resolve(values.out)}\n`)
  return 0
}

/**
 * `conclave predict DIR2 [--in FILE] [--out FILE]`: JSONL examples in (stdin by default),
 * JSONL predictions out (stdout by default; an existing file is never overwritten). A bad
 * line is named on stderr and skipped; the exit code is 1 when there was one.
 */
export async function predictCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args, options: { in: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 1) throw new ConfigError('usage: conclave predict DIR2 [--in FILE.jsonl] [--out FILE.jsonl]')
  const { predictor } = await loadExport(resolve(positionals[0] as string))
  const text = await readExamples(values.in)
  const { predictions, errors } = predictJsonl(predictor, text, values.in ?? 'stdin')
  const body = predictions.map(p => p + '\n').join('')
  if (values.out === undefined) process.stdout.write(body)
  else {
    await writeFile(values.out, body, { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(err.code === 'EEXIST' ? `${values.out} exists; not overwriting it` : `cannot write ${values.out}: ${err.message}`)
    })
  }
  for (const err of errors) process.stderr.write(`conclave predict: ${err.name} (${err.code}): ${err.message}\n`)
  process.stderr.write(`${predictions.length} predicted${errors.length === 0 ? '' : `, ${errors.length} refused`}\n`)
  return errors.length === 0 ? 0 : 1
}

/** Examples to predict are read up to what a dataset file may hold; more, from a pipe or a file, is refused before it is all read. */
const MAX_PREDICT_INPUT_BYTES = MAX_DATASET_FILE_BYTES

/** The JSONL text at `path`, or on stdin, read as it comes (a FIFO or a pipe too); a refused stream is closed, left unread. */
async function readExamples (path: string | undefined): Promise<string> {
  const source = path === undefined ? process.stdin : createReadStream(path)
  try {
    return (await readStreamCapped(source, MAX_PREDICT_INPUT_BYTES, path ?? 'stdin')).toString('utf8')
  } catch (err) {
    if (err instanceof ConclaveError) throw err
    throw new ConfigError(`cannot read ${path ?? 'stdin'}: ${(err as Error).message}`, { cause: err })
  }
}
