import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ConfigError } from '../core/errors.ts'

/**
 * `parseArgs`, refusing a flag given more than once unless its option says `multiple`: alone,
 * parseArgs keeps the last value, so `--rounds 3 --rounds 5` ran 5 rounds without a word.
 * Every subcommand parses its flags here.
 */
export function parseFlags<T extends Omit<ParseArgsConfig, 'tokens'>> (config: T): ReturnType<typeof parseArgs<T>> {
  const { tokens, ...parsed } = parseArgs({ ...config, tokens: true })
  const given = new Map<string, string | undefined>()
  for (const token of tokens ?? []) {
    if (token.kind !== 'option' || config.options?.[token.name]?.multiple === true) continue
    if (given.has(token.name)) throw new ConfigError(`--${token.name} given twice${token.value === undefined ? '' : ` (${given.get(token.name)}, then ${token.value})`}: give each flag once`)
    given.set(token.name, token.value)
  }
  return parsed as ReturnType<typeof parseArgs<T>>
}
