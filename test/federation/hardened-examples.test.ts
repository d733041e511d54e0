import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { Attack } from '../../src/federation/attacks.ts'
import { parseRunConfig, readConfigFile } from '../../src/federation/config.ts'
import { termsOf } from '../../bench/robustness-setting.ts'

/** Every attack the harness knows (bench/robustness.ts runs each), each run with 1 and with 2 of 5 members hostile. */
const ATTACKS = Attack.options.map(a => a.shape.kind.value)

interface Row { task: string, seed: number, hostile: number, attack: string, split: string, fromRound?: number, args?: unknown, quorum?: number, acceptance?: string, minGain?: number, probationGain?: number, minSharpening?: number, sharpeningYardstick?: string, minMovement?: number, strikes?: number, excludeRejected?: boolean, gainingVouchers?: boolean, badOnProbation?: boolean, probationOnce?: boolean, maxRoundCosine?: number }

describe('the hardened examples (examples/hardened)', () => {
  it.each(['classify', 'ner'])('%s: its terms are the ones robustness.json measured against every attack, 1 and 2 of 5 hostile, seeds 1-3 on test, and with no attack', async task => {
    const config = parseRunConfig(await readConfigFile(`examples/hardened/${task}.yaml`))
    expect(config.task.kind).toBe(task)
    expect(config.quorum).toEqual({ kind: 'fraction', fraction: 0.5 })
    const { rows } = JSON.parse(await readFile('docs/results/robustness.json', 'utf8')) as { rows: Row[] }
    const measured = rows.filter(r => r.task === task && r.split === 'test' && r.fromRound === undefined && r.args === undefined && r.quorum === undefined &&
      termsOf(r) === termsOf(config))
    const cells = new Set(measured.map(r => `${r.hostile}/${r.attack}/${r.seed}`))
    const missing = [[0, 'none'], ...ATTACKS.flatMap(a => [[1, a], [2, a]])].map(([h, a]) => `${h as number}/${a as string}`).filter(c => [1, 2, 3].some(seed => !cells.has(`${c}/${seed}`)))
    expect(missing).toEqual([])
  })
})
