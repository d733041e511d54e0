import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { InvalidWeightsError } from '../core/errors.ts'

/**
 * A BERT encoder (Devlin et al. 2019, as Hugging Face `BertModel` computes it) run in
 * TF.js for inference: token + position + segment-0 embeddings, then post-LayerNorm
 * blocks of multi-head self-attention and an erf-GELU feed-forward layer.
 */

/** The fields of a Hugging Face `config.json` this encoder reads. */
export const BertConfig = z.object({
  model_type: z.literal('bert'),
  hidden_size: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  max_position_embeddings: z.number().int().positive(),
  layer_norm_eps: z.number().positive(),
  hidden_act: z.literal('gelu'),
  position_embedding_type: z.literal('absolute').default('absolute')
}).refine(c => c.hidden_size % c.num_attention_heads === 0, 'hidden_size must divide into num_attention_heads')
export type BertConfig = z.infer<typeof BertConfig>

const TensorEntry = z.object({ dtype: z.string(), shape: z.array(z.number().int().nonnegative()), data_offsets: z.tuple([z.number().int(), z.number().int()]) })

/**
 * The F32 tensors of a safetensors file. Unlike `decodeSafetensors` (F32 only, for the
 * weights Conclave exchanges) this skips other dtypes: checkpoints from `transformers`
 * carry an I64 `embeddings.position_ids` buffer that is not a weight.
 */
export function readF32Tensors (bytes: Uint8Array): Map<string, tf.Tensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = bytes.length >= 8 ? Number(view.getBigUint64(0, true)) : Infinity
  if (8 + headerLength > bytes.length) throw new InvalidWeightsError('safetensors header length does not fit the file')
  let header: Record<string, unknown>
  try {
    header = z.record(z.string(), z.unknown()).parse(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))))
  } catch (err) {
    throw new InvalidWeightsError('safetensors header is not a JSON object', { cause: err })
  }
  const tensors = new Map<string, tf.Tensor>()
  try {
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue
      const entry = TensorEntry.safeParse(raw)
      if (!entry.success) throw new InvalidWeightsError(`tensor "${name}" has a malformed header entry`)
      const { dtype, shape, data_offsets: [begin, end] } = entry.data
      if (dtype !== 'F32') continue
      const size = shape.reduce((n, d) => n * d, 1)
      if (end - begin !== 4 * size || 8 + headerLength + end > bytes.length) throw new InvalidWeightsError(`tensor "${name}" has offsets that do not match its shape`)
      // Copied into a fresh, 4-byte-aligned buffer: the data section need not be aligned, and a
      // Node Buffer's slice() is a view, not a copy.
      const data = new Uint8Array(bytes.subarray(8 + headerLength + begin, 8 + headerLength + end))
      tensors.set(name, tf.tensor(new Float32Array(data.buffer, 0, size), shape))
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose() // no half-loaded model left in backend memory
    throw err
  }
  return tensors
}

export class BertEncoder {
  readonly config: BertConfig
  private readonly w: Map<string, tf.Tensor>

  /** Takes ownership of `weights` (PyTorch names; Linear weights are transposed here once, to [in, out]). */
  constructor (params: { config: BertConfig, weights: Map<string, tf.Tensor> }) {
    const { config, weights } = params
    const missing = requiredWeights(config).filter(n => !weights.has(n))
    if (missing.length > 0) throw new InvalidWeightsError(`BERT weights lack ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`)
    this.config = config
    this.w = new Map()
    for (const [name, t] of weights) {
      const linear = name.startsWith('encoder.') && t.rank === 2
      this.w.set(name, linear ? tf.tidy(() => t.transpose()) : t)
      if (linear) t.dispose()
    }
  }

  /**
   * Hidden states [batch, length, hidden] for right-padded `ids` [batch, length], where
   * `mask` [batch, length] is 1 on real tokens and 0 on padding. Call inside tf.tidy.
   */
  forward (ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor3D {
    const { num_attention_heads: heads, hidden_size: hidden, num_hidden_layers: layers, layer_norm_eps: eps } = this.config
    const [batch, length] = ids.shape
    const headSize = hidden / heads
    const p = (name: string): tf.Tensor => this.w.get(name) as tf.Tensor
    const norm = (x: tf.Tensor2D, prefix: string): tf.Tensor2D => {
      const { mean, variance } = tf.moments(x, -1, true)
      return x.sub(mean).mul(variance.add(eps).rsqrt()).mul(p(`${prefix}.weight`)).add(p(`${prefix}.bias`))
    }
    // Flattened to 2-D so one fused matMul + bias serves every token.
    const dense = (x: tf.Tensor2D, prefix: string): tf.Tensor2D => tf.fused.matMul({ a: x, b: p(`${prefix}.weight`) as tf.Tensor2D, bias: p(`${prefix}.bias`) }) as tf.Tensor2D
    const toHeads = (x: tf.Tensor2D): tf.Tensor4D => x.reshape([batch, length, heads, headSize]).transpose([0, 2, 1, 3])

    let x = norm(tf.gather(p('embeddings.word_embeddings.weight') as tf.Tensor2D, ids.flatten())
      .add(p('embeddings.position_embeddings.weight').slice([0, 0], [length, hidden]).tile([batch, 1]))
      .add(p('embeddings.token_type_embeddings.weight').slice([0, 0], [1, hidden])), 'embeddings.LayerNorm')
    // Padding keys get a large negative score, so softmax gives them no weight.
    const maskBias = tf.sub(1, mask).mul(-1e9).reshape([batch, 1, 1, length])
    for (let i = 0; i < layers; i++) {
      const at = `encoder.layer.${i}`
      const [q, k, v] = ['query', 'key', 'value'].map(m => toHeads(dense(x, `${at}.attention.self.${m}`))) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]
      const scores = tf.matMul(q, k, false, true).mul(1 / Math.sqrt(headSize)).add(maskBias)
      const context = tf.matMul(tf.softmax(scores), v).transpose([0, 2, 1, 3]).reshape([batch * length, hidden]) as tf.Tensor2D
      x = norm(dense(context, `${at}.attention.output.dense`).add(x), `${at}.attention.output.LayerNorm`)
      const inner = dense(x, `${at}.intermediate.dense`)
      // The exact (erf) GELU that BERT uses, not the tanh approximation.
      const gelu = inner.mul(inner.mul(Math.SQRT1_2).erf().add(1)).mul(0.5) as tf.Tensor2D
      x = norm(dense(gelu, `${at}.output.dense`).add(x), `${at}.output.LayerNorm`)
    }
    return x.reshape([batch, length, hidden])
  }

  dispose (): void {
    for (const t of this.w.values()) t.dispose()
    this.w.clear()
  }
}

function requiredWeights (config: BertConfig): string[] {
  const names = ['word_embeddings.weight', 'position_embeddings.weight', 'token_type_embeddings.weight', 'LayerNorm.weight', 'LayerNorm.bias'].map(n => `embeddings.${n}`)
  const perLayer = ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'attention.output.LayerNorm', 'intermediate.dense', 'output.dense', 'output.LayerNorm']
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const m of perLayer) names.push(`encoder.layer.${i}.${m}.weight`, `encoder.layer.${i}.${m}.bias`)
  }
  return names
}
