import { readFile } from 'node:fs/promises'
import { ConfigError } from '../src/core/errors.ts'

/** The default template for a role: `prompts/<name>.md`. */
export const DEFAULT_PROMPTS = { participant: new URL('./participant.md', import.meta.url), chat: new URL('./chat.md', import.meta.url) } as const

/**
 * Reads a prompt template (the role's default, or a file the config names) and fills its
 * `{key}` placeholders; a placeholder without a value stays as written.
 */
export async function loadPrompt (template: keyof typeof DEFAULT_PROMPTS | { path: string }, values: Record<string, string>): Promise<string> {
  const source = typeof template === 'string' ? DEFAULT_PROMPTS[template] : template.path
  let text: string
  try {
    text = await readFile(source, 'utf8')
  } catch (err) {
    throw new ConfigError(`prompt ${String(source)}: cannot read it: ${(err as Error).message}`)
  }
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole).trim()
}
