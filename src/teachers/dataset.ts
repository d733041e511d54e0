import { TeacherError } from '../core/errors.ts'
import { countWords, firstWords, type AskOptions, type Teacher, type TeacherAnswer } from './index.ts'

/**
 * The embedded default teacher: answers that ship with a dataset (MedQuAD's NIH answers),
 * looked up by question. It stands in for a large model when none is served; it knows
 * exactly the questions it was given and refuses others.
 */
export class DatasetTeacher implements Teacher {
  readonly name: string
  readonly #answers: Map<string, string>

  constructor (pairs: Iterable<{ question: string, answer: string }>, name = 'dataset:medquad') {
    this.name = name
    this.#answers = new Map([...pairs].map(p => [normalise(p.question), p.answer]))
  }

  get size (): number { return this.#answers.size }

  async ask (question: string, options: AskOptions = {}): Promise<TeacherAnswer> {
    options.signal?.throwIfAborted()
    const answer = this.#answers.get(normalise(question))
    if (answer === undefined) throw new TeacherError(`${this.name} has no answer for "${question.slice(0, 80)}"`)
    const text = firstWords(answer, options.maxTokens ?? 256)
    return { teacher: this.name, question, text, tokens: countWords(text) }
  }
}

const normalise = (q: string): string => q.trim().replace(/\s+/g, ' ').toLowerCase()
