import { z } from 'zod'
import { BadCommandError } from '../../core/errors.ts'
import { parseQuorum, type QuorumRule } from '../../core/quorum.ts'
import { MAX_COMMITTEE } from '../../core/records.ts'

/** A whole number written in decimal, within bounds: room text, so no signs, exponents or spaces. */
const whole = (min: number, max: number): z.ZodType<number, string> =>
  z.string({ error: 'missing' }).regex(/^\d{1,10}$/, 'expected a whole number').transform(Number).pipe(z.number().int().min(min, `at least ${min}`).max(max, `at most ${max}`))

/**
 * What a researcher's `!federate key=value …` asks for. The rest of a federation's settings
 * (store, ledger, bus, researchers, window, the task's limits) come from the lobby's config,
 * the same in every agent's.
 */
export const FederateRequest = z.object({
  /** The learning task's kind; the lobby config's own task settings apply when it names the same kind. */
  task: z.enum(['classify', 'ner', 'qa'], { error: iss => iss.input === undefined ? 'missing' : 'expected classify, ner or qa' }),
  /** Rounds to run. */
  rounds: whole(1, 1000),
  /** Seeds partitioning, initial weights and training. @default the lobby config's */
  seed: whole(0, 2 ** 31 - 1).optional(),
  /** `majority`, a count (2) or a fraction of the peers (0.5). @default the lobby config's */
  quorum: z.string().max(32, 'at most 32 characters').transform((text, ctx): QuorumRule => {
    try {
      return parseQuorum(text)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a count (2), a fraction of the peers (0.5) or majority' })
      return z.NEVER
    }
  }).optional(),
  /** Judges per proposal (committee validation). @default every peer */
  committee: whole(1, MAX_COMMITTEE).optional(),
  /** Seconds the agents present have to answer before the federation starts with those who did. @default 30 */
  wait: whole(1, 3600).default(30)
}).strict()
export type FederateRequest = z.infer<typeof FederateRequest>

/** The settings a `!federate` takes, for replies that list them. */
export const FEDERATE_SETTINGS = Object.keys(FederateRequest.shape)

/** What a researcher types, for replies. */
export const FEDERATE_USAGE = '!federate task=classify|ner|qa rounds=N [seed=S] [quorum=majority|N|0.F] [committee=K] [wait=SECONDS]'

/**
 * Reads the words after `!federate` (`task=classify rounds=2 seed=7`). Anything else is a
 * BadCommandError whose message names every problem: a word that is not `key=value`, a
 * setting given twice, an unknown setting, a value out of bounds, one missing.
 */
export function parseFederate (args: string): FederateRequest {
  // A Map, not an object: room text names the keys, and `__proto__=x` set on a plain object
  // changes its prototype instead of adding a key, so it vanished instead of being refused.
  const settings = new Map<string, string>()
  const problems: string[] = []
  for (const word of args.trim().split(/\s+/).filter(w => w !== '')) {
    const eq = word.indexOf('=')
    const key = word.slice(0, eq)
    if (eq <= 0) problems.push(`"${clip(word)}" is not key=value`)
    else if (settings.has(key)) problems.push(`${clip(key)} is given twice`)
    else settings.set(key, word.slice(eq + 1))
  }
  const unknown = [...settings.keys()].filter(k => !FEDERATE_SETTINGS.includes(k))
  if (unknown.length > 0) problems.push(`unknown setting${unknown.length === 1 ? '' : 's'} ${unknown.map(clip).join(', ')} (settings: ${FEDERATE_SETTINGS.join(', ')})`)
  const parsed = FederateRequest.safeParse(Object.fromEntries(FEDERATE_SETTINGS.flatMap(k => settings.has(k) ? [[k, settings.get(k)]] : [])))
  if (!parsed.success) problems.push(...parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`))
  if (problems.length > 0 || !parsed.success) throw new BadCommandError(`${problems.join('; ')}. Usage: ${FEDERATE_USAGE}`)
  return parsed.data
}

/** Room text echoed back, kept short. */
function clip (text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}
