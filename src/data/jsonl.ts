import type { z } from 'zod'
import { DatasetError } from '../core/errors.ts'
import { readDatasetLines, type DatasetFileLimits } from './dataset-file.ts'

/**
 * Reads a JSONL file, validating each line; a bad line is a DatasetError with its line number.
 * The file is read as `readDatasetLines` does: a plain file (or a link to one) within the caps.
 */
export async function readJsonl<S extends z.ZodType> (path: string, schema: S, limits: DatasetFileLimits = {}): Promise<Array<z.infer<S>>> {
  return (await readJsonlRows(path, schema, limits)).map(r => r.value)
}

/** As `readJsonl`, each row with its line in the file (1-based), for errors found later. */
export async function readJsonlRows<S extends z.ZodType> (path: string, schema: S, limits: DatasetFileLimits = {}): Promise<Array<{ line: number, value: z.infer<S> }>> {
  const rows: Array<{ line: number, value: z.infer<S> }> = []
  for (const [i, line] of (await readDatasetLines(path, limits)).entries()) {
    if (line.trim() === '') continue
    const row = parseJsonLine(line, schema, `${path}:${i + 1}`)
    if (row instanceof DatasetError) throw row
    rows.push({ line: i + 1, value: row })
  }
  if (rows.length === 0) throw new DatasetError(`${path} has no examples`)
  return rows
}

/** One JSONL line validated against `schema`, or the DatasetError that names `where` (file:line) and what is wrong. */
export function parseJsonLine<S extends z.ZodType> (line: string, schema: S, where: string): z.infer<S> | DatasetError {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    return new DatasetError(`${where}: not JSON`, { cause: err })
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) return new DatasetError(`${where}: ${parsed.error.issues.map(x => `${x.path.join('.') || 'line'} ${x.message}`).join('; ')}`, { cause: parsed.error })
  return parsed.data
}
