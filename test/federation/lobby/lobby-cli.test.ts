import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { capture } from '../capture.ts'

describe('conclave agent --lobby and conclave audit --kubo refuse what cannot run, with the error\'s name', () => {
  it('a lobby needs a Matrix room and no members; audit --kubo needs a service URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-lobby-cli-'))
    const config = async (settings: Record<string, unknown>): Promise<string> => {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.json`)
      await writeFile(file, JSON.stringify({ member: 1, key: 'k.json', dir: 'state', agents: 2, ...settings }))
      return file
    }
    const local = await capture(['agent', '--lobby', '--config', await config({ bus: { kind: 'local' } })])
    expect({ code: local.code, err: local.err.slice(0, 36) }).toEqual({ code: 1, err: 'conclave: ConfigError (ERR_CONFIG): ' })
    const members = await capture(['agent', '--lobby', '--config', await config({ members: [] })])
    expect({ code: members.code, err: members.err.slice(0, 36) }).toEqual({ code: 1, err: 'conclave: ConfigError (ERR_CONFIG): ' })
    const audit = await capture(['audit', dir, '--kubo', 'not a url'])
    expect({ code: audit.code, err: audit.err.slice(0, 36) }).toEqual({ code: 1, err: 'conclave: ConfigError (ERR_CONFIG): ' })
  })
})
