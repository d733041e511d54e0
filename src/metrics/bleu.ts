/**
 * Corpus BLEU-4 with sacrebleu's conventions (Post 2018): mteval-v13a tokenisation,
 * clipped n-gram counts summed over the corpus, brevity penalty against the closest
 * reference length, and sacrebleu's default `exp` smoothing for orders with no match.
 * Returned on a 0–1 scale (sacrebleu prints 0–100).
 */
export interface BleuScore {
  bleu: number
  precisions: number[]
  brevityPenalty: number
  hypLength: number
  refLength: number
}

const RULES: Array<[RegExp, string]> = [
  [/([{-~[-` -&(-+:-@/])/g, ' $1 '],
  [/([^0-9])([.,])/g, '$1 $2 '],
  [/([.,])([^0-9])/g, ' $1 $2'],
  [/([0-9])(-)/g, '$1 $2 ']
]

/** Python's whitespace (str.isspace), which sacrebleu's rstrip and split use: JavaScript's \s lacks \x1c–\x1f and \x85 and has \ufeff. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`)
const PY_SPACE_CHAR = new RegExp(`^[${PY_SPACE}]$`)

/** Python's rstrip(), by a loop: a `[…]+$` pattern retries every start in a long run of spaces (quadratic). */
function rstrip (text: string): string {
  let end = text.length
  while (end > 0 && PY_SPACE_CHAR.test(text[end - 1] as string)) end--
  return text.slice(0, end)
}

/** sacrebleu's `13a` tokeniser, on the segment rstripped as its BLEU does before tokenising. */
export function tokenize13a (text: string): string[] {
  let line = rstrip(text).replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ')
  if (line.includes('&')) line = line.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>')
  line = ` ${line} `
  for (const [re, replacement] of RULES) line = line.replace(re, replacement)
  return line.split(PY_SPLIT).filter(t => t.length > 0)
}

function ngrams (tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(' ')
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

export function corpusBleu (hypotheses: readonly string[], references: readonly string[], maxOrder = 4): BleuScore {
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} references`)
  const correct = new Array<number>(maxOrder).fill(0)
  const total = new Array<number>(maxOrder).fill(0)
  let hypLength = 0
  let refLength = 0
  hypotheses.forEach((hyp, i) => {
    const h = tokenize13a(hyp)
    const r = tokenize13a(references[i] as string)
    hypLength += h.length
    refLength += r.length
    for (let n = 1; n <= maxOrder; n++) {
      const refCounts = ngrams(r, n)
      for (const [gram, count] of ngrams(h, n)) correct[n - 1] = (correct[n - 1] as number) + Math.min(count, refCounts.get(gram) ?? 0)
      total[n - 1] = (total[n - 1] as number) + Math.max(0, h.length - n + 1)
    }
  })
  const brevityPenalty = hypLength < refLength ? (hypLength > 0 ? Math.exp(1 - refLength / hypLength) : 0) : 1
  const precisions = new Array<number>(maxOrder).fill(0)
  if (!correct.some(c => c > 0)) return { bleu: 0, precisions, brevityPenalty, hypLength, refLength }
  let smooth = 1
  for (let n = 0; n < maxOrder; n++) {
    if (total[n] === 0) break
    if (correct[n] === 0) {
      smooth *= 2
      precisions[n] = 1 / (smooth * (total[n] as number))
    } else {
      precisions[n] = (correct[n] as number) / (total[n] as number)
    }
  }
  const logSum = precisions.reduce((s, p) => s + (p > 0 ? Math.log(p) : -9999999999), 0)
  return { bleu: brevityPenalty * Math.exp(logSum / maxOrder), precisions, brevityPenalty, hypLength, refLength }
}
