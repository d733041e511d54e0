import type { JsonCompleter, JsonSchema } from '../../src/llm/json-tools.ts'

/**
 * A completer that answers from a script instead of a model: each call gets the prompt
 * the graph rendered (so a script can react to results) and returns the JSON a model would.
 * It drives the real JsonToolChatModel → graph → tools path; only the model is replaced.
 */
export function scripted (answer: (prompt: { system: string, user: string }, call: number) => string): JsonCompleter & { prompts: string[], schemas: JsonSchema[] } {
  const prompts: string[] = []
  const schemas: JsonSchema[] = []
  return {
    name: 'scripted',
    prompts,
    schemas,
    async complete (prompt, schema) {
      prompts.push(prompt.user)
      schemas.push(schema)
      return answer(prompt, prompts.length)
    }
  }
}

/** The proposal id of this turn's event, as the prompt shows it. */
export function eventProposal (user: string): string | undefined {
  const event = user.split('\n').find(l => l.startsWith('EVENT '))
  return event === undefined ? undefined : /"proposal":"([^"]+)"/.exec(event)?.[1]
}
