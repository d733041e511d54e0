/**
 * `npm run bench`: what the protocol costs, measured on this machine. Prints figures;
 * asserts nothing (tests assert behaviour, never wall-clock time).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Vote } from '../src/core/records.ts'
import { createIdentity, verifyRecord } from '../src/identity/index.ts'
import { randomSecretKey } from '../src/identity/did-key.ts'
import { createLedger } from '../src/ledger/index.ts'
import { createContentStore } from '../src/storage/index.ts'
import { fromSafetensors, toSafetensors, type Weights } from '../src/ml/weights.ts'
import { parseRunConfig } from '../src/federation/config.ts'
import { Simulation } from '../src/federation/simulation.ts'
import { agentDriver } from '../agents/index.ts'
import { writeLongLedger } from './long-ledger.ts'

interface Row { what: string, n: number, seconds: number, unit: string, perUnit?: number }
const rows: Row[] = []

async function measure (what: string, n: number, unit: string, work: (i: number) => Promise<unknown> | unknown, perUnit?: number): Promise<void> {
  const start = performance.now()
  for (let i = 0; i < n; i++) await work(i)
  rows.push({ what, n, seconds: (performance.now() - start) / 1000, unit, perUnit })
}

/** Blocks in the ledger whose audit is measured (issue 16: under 5 s here). */
const AUDITED_RECORDS = 10_000
const AUDIT_SEED = 1
let audited: { ok: boolean, records: number, seconds: number, cpuSeconds: number, processSeconds: number } | undefined

const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-'))
// The long ledger goes in memory where there is such a folder: its 10,000 fdatasyncs would otherwise be most of the bench.
const ledgerRoot = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'conclave-bench-ledger-'))
try {
  const alice = createIdentity(randomSecretKey())
  const vote: Vote = { type: 'vote', federation: 'bench', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0.01, rationale: 'accuracy on my 120 validation examples: 0.5100 → 0.5300 (+0.0200); accept' }
  const jwts: string[] = []
  await measure('sign a vote (EdDSA JWT)', 500, 'records', async () => { jwts.push(await alice.sign(vote)) })
  await measure('verify a vote (EdDSA via node:crypto, each JWT new)', 500, 'records', i => verifyRecord(jwts[i] as string))

  for (const difficulty of [0, 8, 12]) {
    const where = join(dir, `tangle-${difficulty}`)
    const ledger = await createLedger({ kind: 'tangle', difficulty }, { dir: where })
    await measure(`tangle append, difficulty ${difficulty}`, 200, 'blocks', i => ledger.append(jwts[i] as string))
    await ledger.close()
    // Opening re-verifies every block: hashes, parents, proof of work; the signatures were
    // checked once in this process already (on append), so they are not checked again.
    await measure(`tangle open + re-verify (signatures known), difficulty ${difficulty}`, 200, 'blocks', async i => {
      if (i > 0) return
      const again = await createLedger({ kind: 'tangle', difficulty }, { dir: where })
      await again.verify()
      await again.close()
    })
  }

  const store = await createContentStore({ kind: 'helia' }, { dir: join(dir, 'store') })
  const mib = 4
  const payloads = Array.from({ length: 5 }, () => randomBytes(mib * 1024 * 1024))
  const cids: string[] = []
  await measure(`helia put ${mib} MiB`, payloads.length, 'MiB', async i => { cids.push(await store.put(payloads[i] as Buffer)) }, mib)
  await measure(`helia get + verify ${mib} MiB`, cids.length, 'MiB', i => store.get(cids[i] as string), mib)
  // Model-sized content (issue 16: put + pin at 200 MiB/s, get + verify at 300 MiB/s here),
  // fresh random bytes each time; making them is not timed.
  const big = 100
  const timed = { put: 0, pin: 0, get: 0 }
  for (let i = 0; i < 3; i++) {
    const bytes = randomBytes(big * 1024 * 1024)
    let start = performance.now()
    const cid = await store.put(bytes)
    timed.put += performance.now() - start
    await store.pin(cid)
    timed.pin += performance.now() - start
    start = performance.now()
    await store.get(cid, { maxBytes: bytes.length })
    timed.get += performance.now() - start
  }
  rows.push({ what: `helia put ${big} MiB`, n: 3, seconds: timed.put / 1000, unit: 'MiB', perUnit: big })
  rows.push({ what: `helia put + pin ${big} MiB`, n: 3, seconds: timed.pin / 1000, unit: 'MiB', perUnit: big })
  rows.push({ what: `helia get + verify ${big} MiB`, n: 3, seconds: timed.get / 1000, unit: 'MiB', perUnit: big })
  await store.close()

  const weights: Weights = new Map([['dense0.bias', { shape: [23], data: new Float32Array(23) }], ['dense0.kernel', { shape: [2000, 23], data: Float32Array.from({ length: 46_000 }, (_, i) => Math.sin(i)) }]])
  let bytes: Uint8Array = new Uint8Array()
  await measure('safetensors encode (184 KiB model)', 200, 'models', () => { bytes = toSafetensors(weights) })
  await measure('safetensors decode + validate (184 KiB model)', 200, 'models', () => fromSafetensors(bytes))

  // The agent layer's own cost: the same small federation round driven by plain code and by
  // policy agents (LangGraph graph, tool calls, memory checkpoint to disk per step).
  const config = parseRunConfig({ agents: 3, rounds: 1, seed: 1, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 0 }, task: { kind: 'classify', trainLimit: 300, testLimit: 100, featurizer: 'hashed', features: 512 } })
  for (const [label, driver] of [['autopilot', undefined], ['policy agents', agentDriver()]] as const) {
    const sim = await Simulation.create(config, { dir: await mkdtemp(join(dir, 'sim-')), driver })
    await sim.charter()
    await measure(`one round, 3 participants, ${label}`, 1, 'rounds', () => sim.round(1))
    await sim.close()
  }

  // The audit of a long ledger, in a fresh process (no signature checked yet), as `conclave audit DIR` runs it.
  const runDir = join(ledgerRoot, 'run')
  await writeLongLedger(runDir, { records: AUDITED_RECORDS, seed: AUDIT_SEED })
  const start = performance.now()
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(new URL('./audit-dir.ts', import.meta.url)), runDir])
  audited = { ...JSON.parse(stdout) as { ok: boolean, records: number, seconds: number, cpuSeconds: number }, processSeconds: (performance.now() - start) / 1000 }
  rows.push({ what: `audit a ${audited.records}-record run directory (seed ${AUDIT_SEED}, fresh process)`, n: audited.records, seconds: audited.seconds, unit: 'records' })
} finally {
  await rm(dir, { recursive: true, force: true })
  await rm(ledgerRoot, { recursive: true, force: true })
}

const memory = process.memoryUsage()
process.stdout.write('| operation | n | total s | per second |\n|---|---:|---:|---:|\n')
for (const r of rows) process.stdout.write(`| ${r.what} | ${r.n} | ${r.seconds.toFixed(3)} | ${((r.n * (r.perUnit ?? 1)) / r.seconds).toFixed(1)} ${r.unit}/s |\n`)
if (audited !== undefined) {
  process.stdout.write(`\naudit of ${audited.records} records: ${audited.ok ? 'ok' : 'FAILED'} in ${audited.seconds.toFixed(2)} s (${audited.cpuSeconds.toFixed(2)} s CPU, ${(audited.records / audited.seconds).toFixed(0)} records/s); the whole process, start-up included, ${audited.processSeconds.toFixed(2)} s\n`)
}
process.stdout.write(`\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB · heap used ${(memory.heapUsed / 2 ** 20).toFixed(0)} MiB · node ${process.version}\n`)
