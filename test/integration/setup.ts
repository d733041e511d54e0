import { execFileSync } from 'node:child_process'

/**
 * Brings the real services up before the integration suite. A service that cannot start
 * fails the whole run here, loudly, with its script's reason: nothing is skipped.
 */
export function setup (): void {
  for (const service of ['kubo', 'synapse', 'ollama']) {
    try {
      // Output streams through, so a first-time build shows its progress.
      execFileSync(`scripts/services/${service}.sh`, ['up'], { stdio: ['ignore', 'inherit', 'inherit'] })
    } catch (err) {
      throw new Error(`${service} could not start; its script's reason is printed above (${String(err)})`)
    }
  }
}
