import { parseArgs, type ParseArgsConfig } from 'node:util'

/**
 * `parseArgs`, saying so where a flag is given more than once (unless its option says
 * `multiple`): the last value wins, as `npm start -- --rounds 1` needs (the script already
 * passes `--rounds 3`), but no longer without a word (`--rounds 3 --rounds 5` ran 5 rounds
 * silently). Every subcommand parses its flags here.
 */
export function parseFlags<T extends Omit<ParseArgsConfig, 'tokens'>> (config: T, warn: (line: string) => void = line => { process.stderr.write(line) }): ReturnType<typeof parseArgs<T>> {
  const { tokens, ...parsed } = parseArgs({ ...config, tokens: true })
  const given = new Map<string, string | undefined>()
  for (const token of tokens ?? []) {
    if (token.kind !== 'option' || config.options?.[token.name]?.multiple === true) continue
    if (given.has(token.name)) warn(`conclave: --${token.name} given twice${token.value === undefined ? '' : ` (${given.get(token.name)}, then ${token.value}): the last one counts`}\n`)
    given.set(token.name, token.value)
  }
  return parsed as ReturnType<typeof parseArgs<T>>
}
