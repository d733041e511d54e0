import type { Logger } from '../core/logger.ts'

/**
 * Warns, in one line with a count, of test examples whose `what` (text, question) is also in
 * train: not an error (some public datasets overlap), but test scores then measure memory.
 */
export function warnTestInTrain (testFile: string, what: string, train: readonly string[], test: readonly string[], logger: Logger): void {
  const trained = new Set(train)
  const alsoInTrain = test.filter(t => trained.has(t)).length
  if (alsoInTrain > 0) logger.warn(`${testFile}: ${alsoInTrain} of ${test.length} test examples also appear in train.jsonl (same ${what}); test scores will flatter the model`, { file: testFile, alsoInTrain, examples: test.length })
}
