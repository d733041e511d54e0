import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cosine, embeddingSimilarity, SentenceEncoder } from '../../src/metrics/embedding.ts'
import { encodeSafetensors, type Weights } from '../../src/ml/safetensors.ts'
import { basicTokenize, wordPieceTokenizer } from '../../src/ml/wordpiece.ts'

// The real model is checked against a NumPy reference in test/integration/embedding.int.test.ts;
// here a tiny vocabulary and a tiny random BERT cover the logic without downloading anything.
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'un', '##aff', '##able', 'run', '##ning', ',', '!', 'hello', 'cafe', '$', '5', 'a', '##a']
const CONFIG = { model_type: 'bert', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 2, intermediate_size: 16, max_position_embeddings: 16, layer_norm_eps: 1e-12, hidden_act: 'gelu', vocab_size: VOCAB.length }

describe('BERT uncased WordPiece', () => {
  it('lowercases, strips accents, drops control characters and splits off punctuation', () => {
    expect(basicTokenize('Héllo,  WORLD!\tnaïve\u0000 café$5 (x)')).toEqual(['hello', ',', 'world', '!', 'naive', 'cafe', '$', '5', '(', 'x', ')'])
  })

  it('spaces out CJK ideographs and treats other whitespace as a separator', () => {
    expect(basicTokenize('a\u00a0b\u2028中文c')).toEqual(['a', 'b', '中', '文', 'c'])
  })

  it('splits words into greedy longest-match pieces between [CLS] and [SEP]', () => {
    const tok = wordPieceTokenizer({ vocab: VOCAB })
    expect(tok.encode('Unaffable running, HELLO!')).toEqual([2, 4, 5, 6, 7, 8, 9, 11, 10, 3])
    expect(tok.encode('')).toEqual([2, 3])
    expect(tok.padId).toBe(0)
  })

  it('makes a whole word [UNK] when any part of it is unknown, or when it is too long', () => {
    const tok = wordPieceTokenizer({ vocab: VOCAB, maxWordChars: 5 })
    expect(tok.encode('unaffx hello runrun aaaaa aaaaaa')).toEqual([2, 1, 11, 1, 15, 16, 16, 16, 16, 1, 3])
  })

  it('truncates to maxLength tokens, [CLS] and [SEP] included', () => {
    expect(wordPieceTokenizer({ vocab: VOCAB, maxLength: 5 }).encode('a a a a a a')).toEqual([2, 15, 15, 15, 3])
  })

  it('refuses a vocabulary without the special tokens', () => {
    expect(() => wordPieceTokenizer({ vocab: ['a', 'b'] })).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
  })
})

describe('SentenceEncoder and embeddingSimilarity on a tiny random BERT', () => {
  let dir: string
  let encoder: SentenceEncoder

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'conclave-minilm-'))
    await writeModel(dir, tinyWeights())
    encoder = await SentenceEncoder.load(dir)
  })
  afterAll(async () => {
    encoder?.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it('gives unit vectors that do not depend on batch order, batch size or padding', async () => {
    const texts = ['hello', 'unaffable running, hello!', 'a', 'cafe $ 5 a a a a a a a']
    const together = await encoder.embed(texts)
    const alone = await Promise.all(texts.map(async t => (await encoder.embed([t]))[0] as Float32Array))
    const pairs = await encoder.embed(texts, { batchSize: 2 })
    expect(together.map(v => Math.hypot(...v))).toEqual(texts.map(() => expect.closeTo(1, 6)))
    together.forEach((v, i) => {
      expect(cosine(v, alone[i] as Float32Array)).toBeCloseTo(1, 6)
      expect(cosine(v, pairs[i] as Float32Array)).toBeCloseTo(1, 6)
    })
  })

  it('scores each pair by cosine and averages them, leaking no tensors', async () => {
    const before = tf.memory().numTensors
    const { mean, scores } = await embeddingSimilarity(encoder, ['hello', 'run'], ['hello', 'cafe'])
    expect(tf.memory().numTensors).toBe(before)
    expect(scores[0]).toBeCloseTo(1, 6)
    expect(mean).toBeCloseTo(((scores[0] as number) + (scores[1] as number)) / 2, 12)
    expect(await embeddingSimilarity(encoder, [], [])).toEqual({ mean: 0, scores: [] })
  })

  it('reports progress per batch and stops when aborted', async () => {
    const events: unknown[] = []
    await encoder.embed(['a', 'b', 'c'], { batchSize: 2, onProgress: e => events.push(e) })
    expect(events).toEqual([{ type: 'conclave:embedding:batch', done: 2, total: 3 }, { type: 'conclave:embedding:batch', done: 3, total: 3 }])
    await expect(encoder.embed(['a'], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('refuses hypotheses and references of different lengths', async () => {
    await expect(embeddingSimilarity(encoder, ['a'], [])).rejects.toBeInstanceOf(RangeError)
  })
})

describe('SentenceEncoder.load validation', () => {
  it('names a missing model folder a ConfigError', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'conclave-minilm-empty-'))
    await expect(SentenceEncoder.load(empty)).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
    await rm(empty, { recursive: true })
  })

  it('refuses a config that is not BERT, and weights that lack a layer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-minilm-bad-'))
    const weights = tinyWeights()
    await writeModel(dir, weights, { ...CONFIG, model_type: 'gpt2' })
    await expect(SentenceEncoder.load(dir)).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
    weights.delete('encoder.layer.1.output.dense.bias')
    await writeModel(dir, weights)
    await expect(SentenceEncoder.load(dir)).rejects.toMatchObject({ name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' })
    await rm(dir, { recursive: true })
  })
})

async function writeModel (dir: string, weights: Weights, config: object = CONFIG): Promise<void> {
  await writeFile(join(dir, 'config.json'), JSON.stringify(config))
  await writeFile(join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 12, do_lower_case: false }))
  await writeFile(join(dir, 'vocab.txt'), VOCAB.join('\n') + '\n')
  await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(weights))
}

/** Hugging Face BertModel names and shapes (Linear weights [out, in]), seeded pseudo-random values. */
function tinyWeights (): Weights {
  const { hidden_size: h, intermediate_size: f, max_position_embeddings: p, num_hidden_layers: layers } = CONFIG
  let seed = 7
  const random = (shape: number[]): { shape: number[], data: Float32Array } => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 - 0.5 })
  })
  const w: Weights = new Map([
    ['embeddings.word_embeddings.weight', random([VOCAB.length, h])],
    ['embeddings.position_embeddings.weight', random([p, h])],
    ['embeddings.token_type_embeddings.weight', random([2, h])],
    ['embeddings.LayerNorm.weight', random([h])],
    ['embeddings.LayerNorm.bias', random([h])]
  ])
  for (let i = 0; i < layers; i++) {
    const at = `encoder.layer.${i}`
    for (const [name, out, inp] of [['attention.self.query', h, h], ['attention.self.key', h, h], ['attention.self.value', h, h], ['attention.output.dense', h, h], ['intermediate.dense', f, h], ['output.dense', h, f]] as const) {
      w.set(`${at}.${name}.weight`, random([out, inp]))
      w.set(`${at}.${name}.bias`, random([out]))
    }
    for (const name of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      w.set(`${at}.${name}.weight`, random([h]))
      w.set(`${at}.${name}.bias`, random([h]))
    }
  }
  return w
}
