import { basename } from 'node:path'
import type { Logger } from '../core/logger.ts'

/** A dataset's train and test files, and each example's key in them: its text, question or token sequence. */
export interface SplitKeys {
  trainFile: string
  testFile: string
  /** What the key is, in words: "text", "question", "token sequence". */
  what: string
  train: readonly string[]
  test: readonly string[]
}

/**
 * Warns, in one line with a count, of test examples whose key (text, question, tokens) is also
 * in train: not an error (some public datasets overlap), but test scores then measure memory.
 */
export function warnTestInTrain ({ trainFile, testFile, what, train, test }: SplitKeys, logger: Logger): void {
  const trained = new Set(train)
  const alsoInTrain = test.filter(t => trained.has(t)).length
  if (alsoInTrain > 0) logger.warn(`${testFile}: ${alsoInTrain} of ${test.length} test examples also appear in ${basename(trainFile)} (same ${what}); test scores will flatter the model`, { file: testFile, alsoInTrain, examples: test.length })
}
