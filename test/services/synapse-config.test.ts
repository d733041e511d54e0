import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

// synapse.sh's configure(), run alone (no Synapse built or started) into a scratch state folder
// under the usual umask 022: its functions without `source lib.sh` and the closing `svc_main`.
const configure = (state: string): string => `
  set -euo pipefail
  umask 022
  source scripts/services/lib.sh
  source <(sed -e '$d' -e '/^source /d' scripts/services/synapse.sh)
  STATE=${JSON.stringify(state)}; CONFIG=$STATE/homeserver.yaml; LOG=$STATE/log; PY=python3
  mkdir -p "$STATE/data"; : > "$STATE/data/localhost.signing.key"
  configure`

describe('synapse.sh configure', () => {
  let dir: string | undefined
  afterEach(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  // Found red-teaming: homeserver.yaml (0644, in a 0755 folder) repeated the registration secret, with which any
  // local user could register an admin on 127.0.0.1:8008; Synapse's database, holding every access token, was 0644 too.
  it('keeps the secrets it writes into homeserver.yaml, and the folder Synapse keeps its database in, from other local users', async () => {
    dir = await mkdtemp(join(tmpdir(), 'conclave-synapse-'))
    const state = join(dir, 'state')
    const run = spawnSync('bash', ['-c', configure(state)], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const mode = async (path: string): Promise<string> => ((await stat(path)).mode & 0o777).toString(8)
    expect(await mode(state)).toBe('700')
    expect(await mode(join(state, 'homeserver.yaml'))).toBe('600')
    expect(await mode(join(state, 'shared-secret'))).toBe('600')
    expect(await readFile(join(state, 'homeserver.yaml'), 'utf8')).toContain(`registration_shared_secret: "${(await readFile(join(state, 'shared-secret'), 'utf8')).trim()}"`)
  })
})
