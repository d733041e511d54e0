/**
 * `node bench/qa-judge.ts`: how QA peers judge updates, checked on the dev split only (seed 11,
 * the Table 1 setting). Prints dev BLEU per round for Conclave clean and with one hostile
 * agent, and FedAvg clean. Results: docs/results/qa-judge-selection.md.
 */
import { runBaseline } from '../src/federation/baselines.ts'
import { parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { TABLE1_BASE, TABLE1_ROUNDS, TABLE1_SETTINGS } from './table1-setting.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
for (const setting of TABLE1_SETTINGS) {
  const config = parseRunConfig({ ...TABLE1_BASE, rounds: TABLE1_ROUNDS, seed: 11, task: { kind: 'qa' }, evalSplit: 'dev', attacks: setting.attacks, agent: { driver: 'autopilot' } } as unknown as RunConfigInput)
  const out = await mkdtemp(join(tmpdir(), 'qa-dev-'))
  const r = await runFederation(config, { out })
  await rm(out, { recursive: true, force: true })
  console.log(setting.name, 'conclave dev', r.rounds.map(x => x.metric.value.toFixed(4)).join(' '), 'rejected', r.rejectionRate.toFixed(3), r.rounds.map(x => `${x.accepts}/${x.proposals}`).join(' '))
  if (setting.hostile === 0) {
    const f = await runBaseline('fedavg', config)
    console.log(setting.name, 'fedavg dev', f.rounds.map(x => x.metric.value.toFixed(4)).join(' '))
  }
}
