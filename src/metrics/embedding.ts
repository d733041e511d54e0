import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions, ProgressOptions } from '../core/options.ts'
import { initBackend } from '../ml/backend.ts'
import { BertConfig, BertEncoder, readF32Tensors } from '../ml/bert.ts'
import { wordPieceTokenizer, type WordPiece } from '../ml/wordpiece.ts'
import { vectorCosine } from '../ml/similarity.ts'

/**
 * Embedding similarity of generated answers to references: the cosine between their
 * sentence-transformers embeddings (all-MiniLM-L6-v2: BERT, mean pooling over real tokens,
 * L2 normalisation), computed in-process with TF.js from the model folder that
 * `scripts/models/minilm.sh` installs and prints.
 */

const FILES = ['config.json', 'model.safetensors', 'vocab.txt', 'sentence_bert_config.json'] as const
const SentenceBertConfig = z.object({ max_seq_length: z.number().int().positive() })

export interface EmbedOptions extends AbortOptions, ProgressOptions<{ type: 'conclave:embedding:batch', done: number, total: number }> {
  /** Texts encoded at once; each batch is padded to its longest text. @default 32 */
  batchSize?: number
}

export class SentenceEncoder {
  readonly dimension: number
  readonly tokenizer: WordPiece
  private readonly bert: BertEncoder

  private constructor (bert: BertEncoder, tokenizer: WordPiece) {
    this.bert = bert
    this.tokenizer = tokenizer
    this.dimension = bert.config.hidden_size
  }

  /** Loads a sentence-transformers BERT folder (uncased WordPiece, mean pooling, normalised). */
  static async load (dir: string, options: { logger?: Logger } = {}): Promise<SentenceEncoder> {
    for (const file of FILES) {
      await access(join(dir, file)).catch((err: unknown) => {
        throw new ConfigError(`${join(dir, file)} is missing: ${dir} is not an all-MiniLM-L6-v2 model folder; run scripts/models/minilm.sh and pass the folder it prints`, { cause: err })
      })
    }
    const json = async (file: string): Promise<unknown> => JSON.parse(await readFile(join(dir, file), 'utf8'))
    const config = BertConfig.safeParse(await json('config.json'))
    if (!config.success) throw new ConfigError(`${join(dir, 'config.json')} is not a BERT config this encoder runs: ${z.prettifyError(config.error)}`)
    const { max_seq_length: maxSeqLength } = SentenceBertConfig.parse(await json('sentence_bert_config.json'))
    const vocab = (await readFile(join(dir, 'vocab.txt'), 'utf8')).replace(/\n$/, '').split('\n').map(line => line.replace(/\r$/, ''))
    const tokenizer = wordPieceTokenizer({ vocab, maxLength: Math.min(maxSeqLength, config.data.max_position_embeddings) })

    await initBackend(options)
    const weights = readF32Tensors(await readFile(join(dir, 'model.safetensors')))
    try {
      return new SentenceEncoder(new BertEncoder({ config: config.data, weights }), tokenizer)
    } catch (err) {
      for (const t of weights.values()) t.dispose()
      throw err
    }
  }

  /** Unit-length embeddings, one per text, in order. */
  async embed (texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    const batchSize = options.batchSize ?? 32
    const ids = texts.map(t => this.tokenizer.encode(t))
    // Batch texts of similar length together, so little compute goes to padding.
    const order = ids.map((_, i) => i).sort((a, b) => (ids[a] as number[]).length - (ids[b] as number[]).length)
    const out = new Array<Float32Array>(texts.length)
    for (let start = 0; start < order.length; start += batchSize) {
      options.signal?.throwIfAborted()
      const batch = order.slice(start, start + batchSize)
      const pooled = this.pool(batch.map(i => ids[i] as number[]))
      const flat = await pooled.data() as Float32Array
      pooled.dispose()
      batch.forEach((i, row) => { out[i] = flat.slice(row * this.dimension, (row + 1) * this.dimension) })
      options.onProgress?.({ type: 'conclave:embedding:batch', done: Math.min(start + batchSize, texts.length), total: texts.length })
    }
    return out
  }

  dispose (): void {
    this.bert.dispose()
  }

  /** Mean of the hidden states over real tokens, L2-normalised: [batch, hidden]. */
  private pool (seqs: number[][]): tf.Tensor2D {
    const length = Math.max(...seqs.map(s => s.length))
    const padded = seqs.flatMap(s => [...s, ...new Array<number>(length - s.length).fill(this.tokenizer.padId)])
    const real = seqs.flatMap(s => Array.from({ length }, (_, j) => j < s.length ? 1 : 0))
    return tf.tidy(() => {
      const mask = tf.tensor2d(real, [seqs.length, length])
      const hidden = this.bert.forward(tf.tensor2d(padded, [seqs.length, length], 'int32'), mask)
      const mean = hidden.mul(mask.expandDims(2)).sum(1).div(mask.sum(1, true).maximum(1e-9))
      return mean.div(mean.norm('euclidean', 1, true).maximum(1e-12)) as tf.Tensor2D
    })
  }
}

export interface EmbeddingSimilarity {
  /** Mean cosine over the pairs; 0 when there are none. */
  mean: number
  /** Cosine of each hypothesis with its reference, in [-1, 1]. */
  scores: number[]
}

/** Cosine similarity of each hypothesis to the reference at the same index. */
export async function embeddingSimilarity (encoder: SentenceEncoder, hypotheses: readonly string[], references: readonly string[], options: EmbedOptions = {}): Promise<EmbeddingSimilarity> {
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} references`)
  if (hypotheses.length === 0) return { mean: 0, scores: [] }
  const vectors = await encoder.embed([...hypotheses, ...references], options)
  const scores = hypotheses.map((_, i) => cosine(vectors[i] as Float32Array, vectors[hypotheses.length + i] as Float32Array))
  return { mean: scores.reduce((s, x) => s + x, 0) / scores.length, scores }
}

/** Cosine of two vectors (the embeddings are unit length already; dividing keeps it exact for any input). */
export const cosine = vectorCosine
