import { readFile } from 'node:fs/promises'

/** Reads `prompts/<name>.md` and fills `{key}` placeholders. */
export async function loadPrompt (name: 'participant' | 'chat', values: Record<string, string>): Promise<string> {
  const text = await readFile(new URL(`./${name}.md`, import.meta.url), 'utf8')
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole).trim()
}
