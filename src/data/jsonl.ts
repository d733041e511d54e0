import { readFile } from 'node:fs/promises'
import type { z } from 'zod'
import { DatasetError } from '../core/errors.ts'

/** Reads a JSONL file, validating each line; a bad line is a DatasetError with its line number. */
export async function readJsonl<S extends z.ZodType> (path: string, schema: S): Promise<Array<z.infer<S>>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new DatasetError(`cannot read ${path}`, { cause: err })
  }
  const rows: Array<z.infer<S>> = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    const row = parseJsonLine(line, schema, `${path}:${i + 1}`)
    if (row instanceof DatasetError) throw row
    rows.push(row)
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
