/**
 * A decoder for the most likely tag sequence that is valid BIO (I-X only after B-X or I-X),
 * by Viterbi over a per-token classifier's log-probabilities. A per-token argmax often starts
 * an entity with I- or switches type mid-entity, and seqeval then counts a wrong span:
 * decoding under the constraint fixes that without any learned transition statistics.
 *
 * The decoder takes `logits`, row-major with one row of `tags.length` scores per token, and
 * the sentence's first row and length; it returns tag indices.
 */
export function bioDecoder (tags: readonly string[]): (logits: Float32Array, from: number, length: number) => number[] {
  const C = tags.length
  const inside = tags.map(t => t.startsWith('I-'))
  const follows = tags.map(cur => tags.map(prev => !cur.startsWith('I-') || (prev.length > 2 && prev !== 'O' && prev.slice(2) === cur.slice(2))))
  return (logits, from, length) => {
    const logProbs = (t: number): Float64Array => {
      const row = logits.subarray((from + t) * C, (from + t + 1) * C)
      const max = Math.max(...row)
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0))
      return Float64Array.from(row, v => v - lse)
    }
    if (length === 0) return []
    let score = Float64Array.from(logProbs(0), (lp, c) => inside[c] === true ? -Infinity : lp)
    const back: Int32Array[] = []
    for (let t = 1; t < length; t++) {
      const lp = logProbs(t)
      const next = new Float64Array(C).fill(-Infinity)
      const prevOf = new Int32Array(C)
      for (let c = 0; c < C; c++) {
        for (let p = 0; p < C; p++) {
          if ((follows[c] as boolean[])[p] === true && (score[p] as number) > (next[c] as number)) { next[c] = score[p] as number; prevOf[c] = p }
        }
        next[c] = (next[c] as number) + (lp[c] as number)
      }
      score = next
      back.push(prevOf)
    }
    let best = 0
    for (let c = 1; c < C; c++) if ((score[c] as number) > (score[best] as number)) best = c
    const path = [best]
    for (let t = length - 2; t >= 0; t--) path.push(best = (back[t] as Int32Array)[best] as number)
    return path.reverse()
  }
}
