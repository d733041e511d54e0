/**
 * `node bench/committee-saving.ts`: what a committee saves a small federation, measured.
 * The same 10-member classify federation (seed 7, 2 rounds, the test slice of OHSUMED)
 * with every peer judging and with committees of 3: evaluations, votes, ledger records,
 * seconds per round and per phase (summed over members), the final metric and model hash.
 * Seconds are wall-clock on whatever else the machine runs; the counts are exact.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { audit } from '../src/federation/audit.ts'
import { parseRunConfig } from '../src/federation/config.ts'
import { Simulation } from '../src/federation/simulation.ts'

const rows = ['| committee | evaluations | votes | records | s per round | fetch + verify s | evaluate s | metric | model sha-256 | audit |', '|---|---:|---:|---:|---:|---:|---:|---:|---|---|']
for (const committee of [undefined, 3]) {
  const config = parseRunConfig({
    agents: 10, rounds: 2, seed: 7, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 4 },
    task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048 },
    ...(committee === undefined ? {} : { committee })
  })
  const dir = await mkdtemp(join(tmpdir(), 'conclave-committee-'))
  const sim = await Simulation.create(config, { dir })
  try {
    await sim.charter()
    const rounds = [await sim.round(1), await sim.round(2)]
    const evaluations = sim.participants.reduce((n, p) => n + [...p.state.proposals.keys()].filter(b => p.evaluation(b) !== undefined).length, 0)
    const replayed = await audit(sim.ledger, sim.store)
    const mean = (f: (r: (typeof rounds)[number]) => number): string => (rounds.reduce((s, r) => s + f(r), 0) / rounds.length).toFixed(1)
    const last = rounds[rounds.length - 1]
    rows.push(`| ${committee ?? 'none (9 peers)'} | ${evaluations} | ${replayed.votes} | ${replayed.records} | ${mean(r => r.wallSeconds)} | ${mean(r => r.phases.fetchVerify)} | ${mean(r => r.phases.evaluate)} | ${last?.metric.value.toFixed(4)} | ${last?.modelHash.slice(0, 12)}… | ${replayed.ok ? 'ok' : 'FAILED'} |`)
  } finally {
    await sim.close()
    await rm(dir, { recursive: true, force: true })
  }
}
process.stdout.write(rows.join('\n') + '\n')
