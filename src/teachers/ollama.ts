import { z } from 'zod'
import { BackendUnavailableError, ModelNotFoundError, PayloadTooLargeError, TeacherError } from '../core/errors.ts'
import { readStreamCapped } from '../core/files.ts'
import { countWords, firstWords, TeacherAnswer, type AskOptions, type Teacher } from './index.ts'

/** What this teacher reads of Ollama's /api/generate reply (it sends more, left alone). */
const GenerateReply = z.object({
  /** Ollama echoes the model asked; an answer from another is refused (sameModel), not cached under this one's name. */
  model: z.string(),
  response: z.string(),
  eval_count: z.number().int().nonnegative().optional()
})

/**
 * Most bytes a reply may take: an answer is at most 100 000 characters (TeacherAnswer), which
 * JSON may spell in 6 bytes each, beside the token ids Ollama sends back as `context`.
 */
export const MAX_REPLY_BYTES = 4 << 20

export interface OllamaTeacherOptions {
  /** Any model the server has: the paper used LLaMA and BioGPT; BioGPT is not in Ollama's library, a biomedical substitute is meditron. */
  model: string
  /** @default http://127.0.0.1:11434 */
  url?: string
  /** Prepended to every question. */
  system?: string
  seed?: number
  /** Longest one answer may take, loading the model included; a slower server is an outage (BackendUnavailableError). @default 300 000 (5 min) */
  timeoutMs?: number
}

/**
 * A teacher served by Ollama (its /api/generate), at temperature 0 with a seed. That is
 * nearly but not exactly deterministic: asked twice in a row, Ollama reuses its KV cache and
 * the rounding can tip greedy decoding onto another answer. What makes an answer stable is
 * the content-addressed cache (`CachedTeacher`): a question is asked once, then read back.
 * Every ask ends: the caller's signal and `timeoutMs` abort it, and a reply is read only up
 * to MAX_REPLY_BYTES. A question goes to `url` only (a redirect is refused), and an answer is
 * taken only as strict UTF-8 from the model asked: anything else is a TeacherError.
 */
export class OllamaTeacher implements Teacher {
  readonly name: string
  readonly #options: OllamaTeacherOptions

  constructor (options: OllamaTeacherOptions) {
    this.name = `ollama:${options.model}`
    this.#options = options
  }

  get #url (): string { return this.#options.url ?? 'http://127.0.0.1:11434' }
  get #timeoutMs (): number { return this.#options.timeoutMs ?? 300_000 }

  async ask (question: string, options: AskOptions = {}): Promise<TeacherAnswer> {
    options.signal?.throwIfAborted()
    const maxTokens = options.maxTokens ?? 256
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), ...(options.signal === undefined ? [] : [options.signal])])
    let response: unknown
    try {
      const reply = await fetch(this.#url.replace(/\/+$/, '') + '/api/generate', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: this.#options.model,
          prompt: question,
          system: this.#options.system ?? 'You are a medical expert. Answer the question accurately and concisely.',
          stream: false,
          options: { temperature: 0, seed: this.#options.seed ?? 0, num_predict: maxTokens }
        }),
        // A question goes to this server only: followed, a redirect would re-send it (307, 308)
        // to whatever the Location names, a service on this machine included, and take its answer.
        redirect: 'manual',
        signal
      })
      if (reply.status >= 300 && reply.status < 400) {
        await reply.body?.cancel()
        throw new TeacherError(`Ollama at ${this.#url} answered ${this.name}'s question with a redirect (HTTP ${reply.status} to ${reply.headers.get('location') ?? 'nowhere'}): refused, a question is sent to the configured URL only`)
      }
      const bytes = await readCapped(reply, reply.ok ? MAX_REPLY_BYTES : 64 << 10)
      if (!reply.ok) throw new OllamaStatusError(reply.status, errorOf(bytes.toString('utf8')) ?? `HTTP ${reply.status}`)
      const text = utf8(bytes)
      if (text === undefined) throw new TeacherError(`${this.name} gave no usable answer: the reply is not UTF-8`)
      response = JSON.parse(text)
    } catch (err) {
      throw await this.#failure(err, options.signal)
    }
    // A server is no authority on its answer's shape: a reply that is not one is this question's failure.
    const reply = GenerateReply.safeParse(response)
    if (!reply.success) throw new TeacherError(`${this.name} gave no usable answer: ${reply.error.issues[0]?.message ?? 'not a generate reply'}`)
    if (!sameModel(reply.data.model, this.#options.model)) throw new TeacherError(`Ollama at ${this.#url} answered as ${reply.data.model}, not ${this.#options.model}: refused, not taken as ${this.name}'s answer`)
    // Nor on its length or its cost: an answer is cut to its cap (Ollama's num_predict holds an
    // honest one under it, a word being at least a token) and costs at least its words, at most the cap.
    const said = reply.data.response.trim()
    const text = countWords(said) > maxTokens ? firstWords(said, maxTokens) : said
    const tokens = Math.min(maxTokens, Math.max(reply.data.eval_count ?? 0, countWords(text)))
    const answer = TeacherAnswer.safeParse({ teacher: this.name, question, text, tokens })
    if (!answer.success) throw new TeacherError(`${this.name} gave no usable answer: ${answer.error.issues[0]?.path.join('.')} ${answer.error.issues[0]?.message}`)
    return answer.data
  }

  /**
   * Why the server gave no answer. A server that cannot be reached, does not answer in time or
   * fails itself (5xx), and a model it does not have, are the teacher's outage or the run's
   * configuration: thrown as BackendUnavailableError / ModelNotFoundError, so distillation stops
   * and asks again later. Only what concerns this question (another 4xx, a reply that is no
   * JSON or too large) is a TeacherError: the question is noted as one it cannot answer. The
   * caller's abort is its own reason, thrown as it is.
   */
  async #failure (err: unknown, signal: AbortSignal | undefined): Promise<Error> {
    if (signal?.aborted === true) return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError')
    if (err instanceof TeacherError) return err
    const url = this.#url
    if (err instanceof SyntaxError || err instanceof PayloadTooLargeError) return new TeacherError(`${this.name} gave no usable answer: ${err.message}`, { cause: err })
    if ((err as Error | undefined)?.name === 'TimeoutError') {
      return new BackendUnavailableError(`Ollama at ${url} gave ${this.name} no answer within ${this.#timeoutMs / 1000} s: a server that slow is down for now`, { cause: err })
    }
    if (err instanceof TypeError && !/fetch failed/.test(err.message)) {
      return new BackendUnavailableError(`Ollama at ${url} broke off its reply (${err.message})`, { cause: err })
    }
    const { explainOllamaError } = await import('../llm/ollama.ts')
    const explained = explainOllamaError(err, this.#options.model, url)
    if (explained instanceof BackendUnavailableError || explained instanceof ModelNotFoundError) return explained
    const status = (err as { status_code?: unknown }).status_code
    if (typeof status === 'number' && (status >= 500 || status === 408 || status === 429)) {
      return new BackendUnavailableError(`Ollama at ${url} answered HTTP ${status} (${explained.message}): try again later`, { cause: err })
    }
    return new TeacherError(`${this.name} could not answer: ${explained.message}`, { cause: explained })
  }
}

/** An HTTP status Ollama answered with, read as explainOllamaError reads the `ollama` client's ResponseError. */
class OllamaStatusError extends Error {
  readonly status_code: number
  constructor (status: number, message: string) {
    super(message)
    this.status_code = status
  }
}

/** Ollama's `{"error": "..."}` on a failure, if that is what it sent. */
function errorOf (text: string): string | undefined {
  try {
    const error = (JSON.parse(text) as { error?: unknown } | null)?.error
    return typeof error === 'string' ? error.slice(0, 500) : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether a reply's `model` names the model asked. Ollama echoes the name as sent; where it
 * is spelt otherwise, the same model may still be meant: without its source suffix (`:cloud`,
 * `-cloud`, `:local`; ollama.com answers under the base name), with the default tag
 * `:latest`, in another case (Ollama's names ignore case).
 */
function sameModel (said: string, asked: string): boolean {
  const key = (name: string): string => {
    const base = name.trim().toLowerCase().replace(/:(cloud|local)$/, '').replace(/(:[^:/]+)-cloud$/, '$1')
    return /:[^/]*$/.test(base) ? base : `${base}:latest`
  }
  return key(said) === key(asked)
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** The bytes as text, or undefined where they are not UTF-8 (decoded leniently, each bad byte would be taught as U+FFFD). */
function utf8 (bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** The reply's body, refused (PayloadTooLargeError) as soon as it passes `maxBytes`; the rest is never read (leaving the loop cancels the body). */
async function readCapped (response: Response, maxBytes: number): Promise<Buffer> {
  return response.body === null ? Buffer.alloc(0) : await readStreamCapped(response.body, maxBytes, 'the reply')
}
