import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

// ARCHITECTURE.md's layers, held by the imports themselves: core/ holds every record's
// schema and depends on nothing else of src/; the protocol core has no LangChain (only
// src/llm, the chat model behind the agents' ReAct loops, may use it).
const SRC = resolve(import.meta.dirname, '../../src')

const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
  entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])

/** Every module a file imports, statically, by re-export or dynamically with a literal. */
function importsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map(m => (m[1] ?? m[2]) as string)
}

/** The src/ folder a relative import lands in, or undefined for a package. */
const folderOf = (file: string, specifier: string): string | undefined =>
  specifier.startsWith('.') ? relative(SRC, resolve(dirname(file), specifier)).split('/')[0] : undefined

describe('layers', () => {
  it('core/ imports nothing of src/ outside core/', () => {
    const outside = sources(join(SRC, 'core')).flatMap(file => importsOf(file)
      .filter(specifier => specifier.startsWith('.') && folderOf(file, specifier) !== 'core')
      .map(specifier => `${relative(SRC, file)} → ${specifier}`))
    expect(outside).toEqual([])
  })

  it('no module of src/ but llm/ imports LangChain', () => {
    const langchain = sources(SRC).filter(file => relative(SRC, file).split('/')[0] !== 'llm').flatMap(file => importsOf(file)
      .filter(specifier => specifier.startsWith('@langchain/') || specifier === 'langchain' || specifier.startsWith('langchain/'))
      .map(specifier => `${relative(SRC, file)} → ${specifier}`))
    expect(langchain).toEqual([])
  })

  it('reads the imports it checks', () => {
    // A pattern that matched nothing would pass both tests above.
    expect(importsOf(join(SRC, 'core/records.ts'))).toContain('./terms.ts')
    expect(importsOf(join(SRC, 'llm/index.ts')).some(specifier => specifier.startsWith('@langchain/'))).toBe(true)
  })
})
