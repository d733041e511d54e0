import { DatasetError } from '../core/errors.ts'
import { readDatasetLines, type DatasetFileLimits } from './dataset-file.ts'

export interface TaggedSentence {
  tokens: string[]
  tags: string[]
}

const TAG = /^(O|[BIES]-[A-Za-z][\w.-]*)$/

/**
 * Reads a CoNLL-style BIO file: one `token<TAB>tag` per line (extra columns before the tag
 * are allowed; the last column is the tag, and every token line has as many columns as the
 * file's first), a blank line after each sentence, `-DOCSTART-` lines skipped. Wrong or
 * ragged columns, bad tags and an empty file are DatasetErrors naming the file and line. The
 * file is read as `readDatasetLines` does: a plain file (or a link to one) within the caps.
 */
export async function readConll (path: string, limits: DatasetFileLimits = {}): Promise<TaggedSentence[]> {
  const lines = await readDatasetLines(path, limits)
  const sentences: TaggedSentence[] = []
  let first: { line: number, columns: number } | undefined
  let current: TaggedSentence = { tokens: [], tags: [] }
  const flush = (): void => {
    if (current.tokens.length > 0) sentences.push(current)
    current = { tokens: [], tags: [] }
  }
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '') { flush(); continue }
    if (line.startsWith('-DOCSTART-')) continue
    const columns = line.split('\t')
    if (columns.length < 2) throw new DatasetError(`${path}:${i + 1}: expected "token<TAB>tag", got ${JSON.stringify(line.slice(0, 60))}`)
    first ??= { line: i + 1, columns: columns.length }
    if (columns.length !== first.columns) throw new DatasetError(`${path}:${i + 1}: ${columns.length} columns, but line ${first.line} has ${first.columns}: every token line needs the same columns`)
    const token = columns[0] as string
    const tag = columns.at(-1) as string
    if (token.length === 0 || /\s/.test(token)) throw new DatasetError(`${path}:${i + 1}: empty token or token with whitespace`)
    if (!TAG.test(tag)) throw new DatasetError(`${path}:${i + 1}: "${tag}" is not a BIO tag (O, B-TYPE, I-TYPE)`)
    current.tokens.push(token)
    current.tags.push(tag)
  }
  flush()
  if (sentences.length === 0) throw new DatasetError(`${path} has no sentences`)
  return sentences
}
