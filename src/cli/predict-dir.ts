import { join } from 'node:path'
import { ConfigError, ContentMismatchError, type DatasetError } from '../core/errors.ts'
import { readPlainFile } from '../core/files.ts'
import { parseJsonLine } from '../data/jsonl.ts'
import { MAX_MODEL_BYTES, sha256Hex } from '../federation/content.ts'
import { createPredictor, type Predictor, type PredictorInput } from '../ml/predictor.ts'
import { fromSafetensors } from '../ml/weights.ts'
import { EXPORT_FILES, ExportedPredictor } from './export-dir.ts'

/**
 * The most predictor.json may hold: its bulk is the tfidf vocabulary, at most 2^20 terms
 * (task.ts maxVocab), each with its IDF written in full; 128 bytes a term is room to spare.
 */
const MAX_PREDICTOR_BYTES = 128 * 1024 * 1024

/**
 * The predictor an export folder holds, from that folder alone: predictor.json must parse,
 * and model.safetensors must be the model it names (its sha-256), before any weight is used.
 */
export async function loadExport (dir: string): Promise<{ exported: ExportedPredictor, predictor: Predictor }> {
  // Plain files only, bounded: an export folder may come from someone else, and a FIFO there would hang us, /dev/zero fill memory.
  const text = (await readPlainFile(join(dir, EXPORT_FILES.predictor), MAX_PREDICTOR_BYTES))?.toString('utf8')
  if (text === undefined) throw new ConfigError(`${dir} is not a Conclave export: it has no ${EXPORT_FILES.predictor} (make one with conclave export RUN_DIR --out ${dir})`)
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  const parsed = ExportedPredictor.safeParse(json)
  if (!parsed.success) throw new ConfigError(`${join(dir, EXPORT_FILES.predictor)} is not a predictor this Conclave reads: ${parsed.error.issues.map(i => `${i.path.join('.')} ${i.message}`).slice(0, 3).join('; ')}`)
  const bytes = await readPlainFile(join(dir, EXPORT_FILES.model), MAX_MODEL_BYTES)
  if (bytes === undefined) throw new ConfigError(`${dir} has no ${EXPORT_FILES.model}`)
  const hash = sha256Hex(bytes)
  if (hash !== parsed.data.model.sha256) throw new ContentMismatchError(`${join(dir, EXPORT_FILES.model)} has sha-256 ${hash}, the export names ${parsed.data.model.sha256}`)
  return { exported: parsed.data, predictor: await createPredictor(parsed.data.predictor, fromSafetensors(bytes)) }
}

/**
 * Predictions for JSONL text, one example per line (blank lines skipped): a line that is
 * not JSON or not an example of the task is named in `errors` and left out; every other
 * line gets its prediction, in input order, with its line number and `id`.
 */
export function predictJsonl (predictor: Predictor, text: string, source: string): { predictions: string[], errors: DatasetError[] } {
  const examples: Array<{ line: number, example: PredictorInput<Predictor['kind']> }> = []
  const errors: DatasetError[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    const example = parseJsonLine(line, predictor.input, `${source}:${i + 1}`)
    if (example instanceof Error) errors.push(example)
    else examples.push({ line: i + 1, example })
  }
  const answers = predictor.predict(examples.map(e => e.example))
  const predictions = examples.map(({ line, example }, k) => JSON.stringify({ line, ...(example.id === undefined ? {} : { id: example.id }), ...answers[k] }))
  return { predictions, errors }
}
