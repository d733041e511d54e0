import { execFileSync } from 'node:child_process'

/**
 * Brings the real services up before the integration suite. A service that cannot start
 * fails the whole run here, loudly, with its script's reason: nothing is skipped.
 */
export function setup (): void {
  for (const service of ['kubo']) {
    try {
      execFileSync(`scripts/services/${service}.sh`, ['up'], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' })
    } catch (err) {
      throw new Error(`${service} could not start: ${(err as { stderr?: string }).stderr ?? String(err)}`)
    }
  }
}
