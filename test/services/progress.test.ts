import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../federation/helpers.ts'

const lib = join(import.meta.dirname, '../../scripts/services/lib.sh')

describe('with_progress (scripts/services/lib.sh)', () => {
  it('says, while a long build runs, how long it has run and its log\'s last line, as plain lines; the build\'s output stays in the log and its status is returned', async () => {
    const log = join(await tempDir('conclave-progress-'), 'build.log')
    // a "build" that names a package, works for 3 s, names another and fails
    const build = 'echo "compiling example.org/a"; echo; sleep 3; echo "compiling example.org/b"; exit 3'
    const result = spawnSync('bash', ['-c', `SERVICE=demo; source "${lib}"; with_progress "$1" sh -c '${build}'; echo "rc=$?"`, 'script', log], {
      env: { ...process.env, CONCLAVE_PROGRESS_S: '1' },
      encoding: 'utf8'
    })
    expect(result.stdout).toBe('rc=3\n')
    const lines = result.stderr.split('\n').filter(l => l !== '')
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(line).toMatch(/^demo: … 0m0\ds so far; last: compiling example\.org\/[ab]$/)
    expect(lines[0]).toMatch(/last: compiling example\.org\/a$/)
    expect(result.stderr).not.toContain('\r')
    expect(await readFile(log, 'utf8')).toBe('compiling example.org/a\n\ncompiling example.org/b\n')
  })
})
