import { basename } from 'node:path'
import { z } from 'zod'
import { DecidedBy } from '../core/records.ts'

/**
 * The model behind an agent's loop, by spec string:
 *   `policy`          the deterministic protocol policy (the embedded default)
 *   `ollama:<model>`  a model served by Ollama (ChatOllama)
 *   `gguf:<path>`     a local GGUF file run in-process (node-llama-cpp)
 * Its votes record the model by `deciderName`: a spec whose name no vote can hold is refused
 * here, at start-up, not at the agent's first vote (which would end its run mid-round).
 */
export const LlmSpec = z.string().trim().refine(
  s => s === 'policy' || /^ollama:[\w.:/-]+$/.test(s) || /^gguf:.+\.gguf$/.test(s),
  { message: 'expected policy, ollama:<model> or gguf:<path to a .gguf file>', abort: true }
).superRefine((spec, ctx) => {
  const problem = unrecordable(deciderName(spec))
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
})
export type LlmSpec = z.infer<typeof LlmSpec>

/** A GGUF model's name on the record (`decidedBy`): its file's name, not its path, which means nothing on the ledger. */
export function ggufName (path: string): string {
  return `gguf:${basename(path)}`
}

/** The model's name on the record for a spec: a GGUF file's by `ggufName`, any other's its spec. */
export function deciderName (spec: string): string {
  return spec.startsWith('gguf:') ? ggufName(spec.slice('gguf:'.length)) : spec
}

/** Why votes could not record a model by this name (`decidedBy`), or undefined when they can. */
export function unrecordable (name: string): string | undefined {
  const recorded = DecidedBy.safeParse(name)
  return recorded.success ? undefined : `votes would record this model as ${JSON.stringify(name)}, which a vote cannot hold (${recorded.error.issues[0]?.message ?? 'invalid'})`
}
