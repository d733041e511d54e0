import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeAtomic } from '../core/files.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions, ProgressOptions } from '../core/options.ts'
import { initBackend } from '../ml/backend.ts'
import type { Task } from '../ml/task.ts'
import type { Weights } from '../ml/weights.ts'
import type { RunConfig } from './config.ts'
import { holdingDir } from './dir-lock.ts'
import type { DriverFactory } from './driver.ts'
import { HEAD_FILE, sealRunDir } from './head.ts'
import { MANIFEST_FILE } from './manifest.ts'
import { assertResumable, assertRunOnly, assertTakeable, markRunConfig, noteWritten, prepareRunDir, RUN_OWNER, runConfigIn } from './run-dir.ts'
import { reportFiles, type RoundReport, type RunReport } from './report.ts'
import { readRunView } from './run-view.ts'
import type { RoundProgress } from './round-loop.ts'
import { Simulation } from './simulation.ts'
import type { PhaseAttribution } from './phases.ts'

export type RunProgress =
  | { type: 'conclave:run:start', agents: number, rounds: number, backend: string }
  | RoundProgress
  | { type: 'conclave:round:end', report: RoundReport }

export interface RunOptions extends AbortOptions, ProgressOptions<RunProgress> {
  /** The run directory: protocol state in `ledger/` and `store/`, reports beside them. */
  out: string
  /** Replace an earlier run in `out`: only what a Conclave run wrote there, and only where its marker says a run made `out` (run-dir.ts). */
  force?: boolean
  /** Continue the killed run in `out` from its ledger, to the same model a run that was never stopped ends with. */
  resume?: boolean
  /** The file `config` was read from (`--config`): `out`'s own config.json, edited, is then this run's settings, and `force` takes it. */
  configFile?: string
  logger?: Logger
  /** What decides for each participant (agents/ builds one per LangGraph agent). @default the autopilot */
  driver?: DriverFactory
  /** Worker threads that train the members' models (Simulation's trainWorkers). @default 1 */
  trainWorkers?: number
  /** How the phase timer charges overlapping spans (Simulation's phaseAttribution). @default innermost */
  phaseAttribution?: PhaseAttribution
  /** Called with the final global model while the task is still loaded, for callers that score it further. */
  onModel?: (weights: Weights, task: Task) => Promise<void>
  /**
   * Called with the report once the run is sealed, still holding `out`: `conclave run` audits the
   * directory there and writes the audit into its report, which no process started meanwhile may see
   * half done or have written over.
   */
  onSealed?: (report: RunReport) => Promise<void>
}

/** `conclave run`: a simulated federation on this machine, with its report written to `out`. */
export async function runFederation (config: RunConfig, options: RunOptions): Promise<RunReport> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  // Checked before the lock is taken (a directory that is not a run's gets no lock file), and again under it.
  if (options.resume === true) await assertResumableHere(options.out)
  else await assertTakeable(options.out, RUN_OWNER)
  return await holdingDir(options.out, async () => {
    if (options.resume === true) await assertResumableHere(options.out)
    else await prepareRunDir(options.out, { force: options.force, configFile: options.configFile })
    return await runLocked(config, options, { started, startedAt })
  })
}

/** A resume writes into `dir`: it holds a run, and nothing the run did not write (a link planted there is never written through). */
async function assertResumableHere (dir: string): Promise<void> {
  await assertResumable(dir)
  await assertRunOnly(dir)
}

async function runLocked (config: RunConfig, options: RunOptions, { started, startedAt }: { started: number, startedAt: string }): Promise<RunReport> {
  if (options.resume !== true) {
    await writeRunConfig(options.out, config)
    await markRunConfig(options.out)
  }
  const logger = options.logger ?? silentLogger
  const backend = await initBackend({ logger })
  options.onProgress?.({ type: 'conclave:run:start', agents: config.agents, rounds: config.rounds, backend: backend.backend })

  const sim = await Simulation.create(config, { dir: options.out, logger, driver: options.driver, resume: options.resume, trainWorkers: options.trainWorkers, phaseAttribution: options.phaseAttribution })
  let report: RunReport
  try {
    const rounds = await sim.history()
    if (rounds.length === 0) rounds.push(await sim.charter())
    await sim.run({ from: rounds.length, to: config.rounds }, {
      signal: options.signal,
      onProgress: options.onProgress,
      onRound: report => {
        rounds.push(report)
        options.onProgress?.({ type: 'conclave:round:end', report })
      }
    })
    const decided = rounds.slice(1)
    const proposals = decided.reduce((s, r) => s + r.proposals, 0)
    const reputation = sim.participants[0]?.state.reputation
    report = {
      conclave: '0.1.0',
      startedAt,
      seed: config.seed,
      backend: backend.backend,
      config: config as unknown as Record<string, unknown>,
      agents: sim.participants.map((p, i) => ({
        name: p.name,
        did: p.did,
        trainExamples: sim.shards[i]?.train.length ?? 0,
        valExamples: sim.shards[i]?.val.length ?? 0,
        accepted: reputation?.get(p.did)?.accepted ?? 0,
        rejected: reputation?.get(p.did)?.rejected ?? 0,
        rejections: (sim.rejections.get(p.name) ?? []).map(r => ({ block: r.block, error: r.error.name })),
        ...sim.drivers[i]?.activity?.(),
        ...(p.teacherUse === undefined ? {} : { teacher: p.teacherUse })
      })),
      rounds,
      rejectionRate: proposals === 0 ? 0 : decided.reduce((s, r) => s + r.rejects, 0) / proposals,
      modelHash: rounds.at(-1)?.modelHash ?? '',
      wallSeconds: (performance.now() - started) / 1000
    }
    await writeReport(options.out, report)
    const final = sim.participants[0]?.globalModel
    if (final !== undefined) await options.onModel?.(final.weights, sim.task)
  } finally {
    await sim.close()
  }
  // What the run made, signed by every participant once its ledger and store are closed (an embedded ledger only: IOTA's is not in the directory).
  if (config.ledger.kind !== 'iota') {
    await sealRunDir(options.out, { federation: config.federation, model: report.modelHash, signers: sim.participants.map(p => p.identity) })
    await noteWritten(options.out, RUN_OWNER, [MANIFEST_FILE, HEAD_FILE])
  }
  await options.onSealed?.(report)
  return report
}

/** Reads the config of the run `dir` holds, for `conclave run --resume`. */
export async function readRunConfig (dir: string): Promise<RunConfig> {
  await assertResumable(dir)
  return runConfigIn(dir)
}

/**
 * `DIR/config.json`: the settings the run used, defaults filled in, secrets as `[redacted]`
 * (src/core/secret.ts). Owner-only, like report.json, which repeats it.
 */
export async function writeRunConfig (dir: string, config: RunConfig): Promise<void> {
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
}

/** The report and its plots, each replaced whole (writeAtomic renames over a link rather than writing through it). */
export async function writeReport (dir: string, report: RunReport): Promise<void> {
  await writeAtomic(join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n', { mode: 0o600 })
  const files = await reportFiles(report, await readRunView(join(dir, 'ledger')))
  for (const [file, text] of files) await writeAtomic(join(dir, file), text)
  await noteWritten(dir, RUN_OWNER, ['report.json', ...files.keys()])
}
