import { basename } from 'node:path'
import { ConclaveError, TeacherError } from '../core/errors.ts'
import { releaseSequence, withGguf } from '../llm/gguf.ts'
import type { Token } from 'node-llama-cpp'
import type { AskOptions, Teacher, TeacherAnswer } from './index.ts'

export interface GgufTeacherOptions {
  /** A GGUF model file, run in-process by node-llama-cpp. */
  path: string
  /** Candidates kept per generated token, with their log-probabilities. @default 8 */
  topK?: number
  /** The system turn before every question. */
  system?: string
}

/**
 * A teacher run in-process from a GGUF file, greedy (temperature 0), that also tells its
 * distribution: for every token it generates, its `topK` most likely tokens with their
 * log-probabilities, the generated one first. Students distil those as soft targets (a KL
 * term) where their own vocabulary has the candidate.
 */
export class GgufTeacher implements Teacher {
  readonly name: string
  readonly #options: GgufTeacherOptions

  constructor (options: GgufTeacherOptions) {
    this.name = `gguf:${basename(options.path)}`
    this.#options = options
  }

  async ask (question: string, options: AskOptions = {}): Promise<TeacherAnswer> {
    options.signal?.throwIfAborted()
    const maxTokens = options.maxTokens ?? 256
    const k = this.#options.topK ?? 8
    try {
      return await withGguf(this.#options.path, async ({ model, context }) => {
        const { resolveChatWrapper } = await import('node-llama-cpp')
        const wrapper = resolveChatWrapper(model)
        const { contextText } = wrapper.generateContextState({
          chatHistory: [
            { type: 'system', text: this.#options.system ?? 'You are a medical expert. Answer the question accurately and concisely.' },
            { type: 'user', text: question },
            { type: 'model', response: [] }
          ]
        })
        const sequence = context.getSequence()
        const said: Token[] = []
        const topK: Array<Array<[string, number]>> = []
        try {
          for await (const step of sequence.evaluateWithMetadata(contextText.tokenize(model.tokenizer), { probabilities: true }, { temperature: 0 })) {
            options.signal?.throwIfAborted()
            if (model.isEogToken(step.token) || said.length >= maxTokens) break
            // Each candidate's text as it would continue what was said (leading spaces included).
            // The map holds the whole vocabulary, most likely first: read only its head.
            const head: Array<[Token, number]> = []
            for (const entry of step.probabilities) {
              if (head.length === k) break
              head.push(entry)
            }
            const chosen: [Token, number] = [step.token, step.probabilities.get(step.token) ?? 0]
            const candidates = [chosen, ...head.filter(([token]) => token !== step.token)].slice(0, k)
              .map(([token, p]): [string, number] => [model.detokenize([token], false, said.slice(-4)), Math.log(Math.max(p, Number.MIN_VALUE))])
            said.push(step.token)
            topK.push(candidates)
          }
        } finally {
          await releaseSequence(sequence)
        }
        const text = model.detokenize(said).trim()
        return { teacher: this.name, question, text, tokens: said.length, topK }
      })
    } catch (err) {
      // A missing model file is the run's configuration, not this question's failure.
      if (err instanceof ConclaveError || (err as Error).name === 'AbortError') throw err
      throw new TeacherError(`${this.name} could not answer: ${(err as Error).message}`, { cause: err })
    }
  }
}
