import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRunConfig } from './src/federation/config.ts'
import { Simulation } from './src/federation/simulation.ts'
import { initBackend } from './src/ml/backend.ts'
const [task, attackKind, seed, rounds, h] = process.argv.slice(2)
await initBackend({})
const hostile = Number(h ?? 2)
const attacks = attackKind === 'clean' ? [] : Array.from({ length: hostile }, (_, i) => ({ kind: attackKind, agent: 5 - i }))
const config = parseRunConfig({ agents: 5, quorum: { kind: 'fraction', fraction: 0.5 }, partition: { kind: 'dirichlet', alpha: 1 }, rounds: Number(rounds), momentum: task === 'classify' ? 0.5 : 0, seed: Number(seed), task: { kind: task }, attacks, evalSplit: 'dev', robustness: false })
const sim = await Simulation.create(config, { dir: await mkdtemp(join(tmpdir(), 'geo-')) })
const bad = new Set(attacks.map(a => sim.participants[a.agent - 1]?.did))
for (const p of sim.participants) p.on('conclave:evaluated', e => {
  if (bad.has(p.did)) return
  const g = e.geometry
  console.log(JSON.stringify({ task, attack: attackKind, seed, round: e.round, hostile: bad.has(e.proposer), score: +e.score.toFixed(4), passes: e.passes, norm: g?.normRatio?.toFixed(3), cos: g?.cosine?.toFixed(3), early: g?.earlierCosine?.toFixed(3) }))
})
await sim.charter()
for (let r = 1; r <= config.rounds; r++) { const rep = await sim.round(r); console.error(`round ${r}: ${rep.metric.value.toFixed(4)} accepts ${rep.accepts}`) }
await sim.close()
