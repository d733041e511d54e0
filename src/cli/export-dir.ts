import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path'
import { z } from 'zod'
import { AuditFailedError, ConclaveError, ConfigError, DatasetError, NoCheckpointError } from '../core/errors.ts'
import { realPathNear } from '../core/files.ts'
import type { Charter, ModelRef } from '../core/records.ts'
import { createPredictor, PredictorSpec } from '../ml/predictor.ts'
import { evalExamples, loadTask, TaskConfig } from '../ml/task.ts'
import { createHeliaStore } from '../storage/helia.ts'
import type { ContentStore } from '../storage/index.ts'
import { decodeModel, MAX_MODEL_BYTES } from '../federation/content.ts'
import { memberName } from '../federation/config.ts'
import { assertPreparable, noteWritten, prepareOwnedDir, type DirOwner } from '../federation/run-dir.ts'
import { readRunReport } from '../federation/report.ts'
import { readRunConfig } from '../federation/run.ts'
import { MergeReplay } from '../federation/merge-replay.ts'
import { readLedgerDir } from '../federation/run-view.ts'
import { FederationState } from '../federation/state.ts'
import { auditRunDir } from './audit-dir.ts'
import { modelCard } from './model-card.ts'

/** The files an export holds: everything `conclave predict` needs, and nothing from the run directory besides. */
export const EXPORT_FILES = { model: 'model.safetensors', predictor: 'predictor.json', task: 'task.json', card: 'README.md' } as const

const EXPORT_MARKER = '.conclave-export'
/** The marker's half-written copy an export killed as it noted its files leaves. */
const EXPORT_UNNOTED = [`${EXPORT_MARKER}.tmp`]
export const EXPORT_OWNER: DirOwner = { kind: 'export', marker: EXPORT_MARKER, entries: [...Object.values(EXPORT_FILES), ...EXPORT_UNNOTED], unnoted: EXPORT_UNNOTED }

/** `predictor.json`: which model the export holds, and what a predictor needs besides its weights. */
export const ExportedPredictor = z.object({
  format: z.literal('conclave-predictor'),
  version: z.literal(1),
  /** The checkpoint's model: model.safetensors must hash to `sha256`. */
  model: z.object({ round: z.number().int().nonnegative(), cid: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
  predictor: PredictorSpec
}).strict()
export type ExportedPredictor = z.infer<typeof ExportedPredictor>

export interface ExportOptions {
  /** A new directory, or one an earlier export made (replaced only with `force`). */
  out: string
  /** The round whose global model to export (0: the charter's initial model). @default the last checkpoint */
  round?: number
  /** Replace an earlier export in `out`. @default false */
  force?: boolean
}

export interface ExportResult {
  round: number
  modelHash: string
  metric: { name: string, value: number, split: 'test' | 'dev' }
  head: string
}

/**
 * Takes the global model of one round out of a run directory, as a folder that needs
 * nothing else: the checkpoint's safetensors bytes (their sha-256 is the run's model hash),
 * the task's materialised vocabulary, features and labels, the task config and a model card.
 * The run directory is only read (its store opened read-only), and only when its audit
 * passes: an export vouches for its model, and a run whose audit fails has none to vouch for.
 * The vocabulary is fitted again from the dataset the run names; the model is scored with it
 * and must score what the run reported for that round, so a dataset changed since the run
 * cannot slip a different vocabulary under the weights.
 */
export async function exportRun (runDir: string, options: ExportOptions): Promise<ExportResult> {
  const dir = resolve(runDir)
  const out = resolve(options.out)
  // Where the paths lead, not how they are written: `models -> RUN/store` makes `--out models/final` a folder of the run's.
  const inside = relative(await realPathNear(dir), await realPathNear(out))
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) throw new ConfigError(`--out ${out} is inside the run directory ${dir}, which an export never writes into`)
  const audit = await auditRunDir(dir)
  if (!audit.ok || audit.head === null) {
    const f = audit.firstFailure
    throw new AuditFailedError(`the audit of ${dir} fails at record ${f?.seq}: ${f?.error.name}: ${f?.error.message}; nothing was exported`)
  }
  const config = await readRunConfig(dir)
  const { charter, last, round, ref, bytes } = await chosenModel(dir, audit.modelHash, options.round)
  // Refused now, before the work below; the earlier export goes only once all of it succeeded (placeExport).
  await assertPreparable(out, EXPORT_OWNER, { force: options.force })
  const weights = decodeModel(bytes, ref)

  const task = await loadTask(config.task)
  let metric: ExportResult['metric']
  let spec: PredictorSpec
  try {
    if (task.predictor === undefined) throw new ConfigError(`task ${task.name} has no predictor to export`)
    spec = task.predictor
    await createPredictor(spec, weights)
    const scored = await task.evaluate(weights, evalExamples(task, config.evalSplit))
    metric = { name: scored.metricName, value: scored.metric, split: config.evalSplit }
  } finally {
    task.dispose()
  }
  const reported = (await readRunReport(dir))?.rounds.find(r => r.round === round)?.metric.value
  if (reported !== undefined && reported !== metric.value) {
    throw new DatasetError(`round ${round}'s model scores ${metric.name} ${metric.value} with the vocabulary fitted from ${config.task.data} now, where the run reported ${reported}: the dataset has changed since the run, so its vocabulary would not be the model's`)
  }

  const exported: ExportedPredictor = { format: 'conclave-predictor', version: 1, model: { round, ...ref }, predictor: spec }
  const files = new Map<string, string | Uint8Array>()
  files.set(EXPORT_FILES.model, bytes)
  files.set(EXPORT_FILES.predictor, JSON.stringify(exported) + '\n')
  files.set(EXPORT_FILES.task, JSON.stringify(TaskConfig.parse(config.task), null, 2) + '\n')
  files.set(EXPORT_FILES.card, modelCard({
    federation: charter.federation,
    task: config.task,
    round,
    lastRound: last,
    model: ref,
    head: audit.head,
    audit,
    members: charter.members.map((did, i) => ({ name: memberName(i), did })),
    seed: config.seed,
    metric,
    labels: 'labels' in spec ? spec.labels : 'tags' in spec ? spec.tags : undefined
  }))
  await placeExport(out, files, options.force)
  return { round, modelHash: ref.sha256, metric, head: audit.head.id }
}

/**
 * Writes the export's files in a folder beside `out`, then takes `out` (an earlier export goes
 * only now) and moves them in: a write that fails (a full disk) leaves the earlier export, or
 * no `out` at all, and the folder beside it is removed either way.
 */
async function placeExport (out: string, files: ReadonlyMap<string, string | Uint8Array>, force: boolean | undefined): Promise<void> {
  await mkdir(dirname(out), { recursive: true })
  const staging = await mkdtemp(join(dirname(out), `.${basename(out)}.export-`))
  try {
    for (const [name, data] of files) await writeFile(join(staging, name), data, { flag: 'wx' })
    await prepareOwnedDir(out, EXPORT_OWNER, { force })
    for (const name of files.keys()) await rename(join(staging, name), join(out, name))
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  await noteWritten(out, EXPORT_OWNER, [...files.keys()])
}

/** The charter, the last round, and round `round`'s model (the last by default) with its bytes, from the run's read-only store. */
async function chosenModel (dir: string, audited: string | null, round: number | undefined): Promise<{ charter: Charter, last: number, round: number, ref: ModelRef, bytes: Uint8Array }> {
  const store = await createHeliaStore({ dir: join(dir, 'store'), readOnly: true })
  try {
    const { charter, checkpoints } = await checkpointsOf(dir, store)
    const last = Math.max(0, ...checkpoints.keys())
    if (checkpoints.get(last)?.sha256 !== audited) throw new AuditFailedError(`the last checkpoint is not the model the audit replayed (${audited})`)
    const chosen = round ?? last
    const ref = checkpoints.get(chosen)
    if (ref === undefined) throw new NoCheckpointError(`the run has no checkpoint of round ${chosen}: its rounds are 0 (the initial model) to ${last}`)
    return { charter, last, round: chosen, ref, bytes: await store.get(ref.cid, { maxBytes: MAX_MODEL_BYTES }) }
  } finally {
    await store.close()
  }
}

/**
 * The charter and each round's checkpoint (0: the charter's initial model), from the records
 * the protocol applies, each checkpoint's model derived again from its round's accepted
 * updates as the audit derives it (a recorder's made-up model is refused, and the right one after it stands).
 */
async function checkpointsOf (dir: string, store: ContentStore): Promise<{ charter: Charter, checkpoints: Map<number, ModelRef> }> {
  const { blocks, ledger } = await readLedgerDir(join(dir, 'ledger'))
  const state = new FederationState()
  const merges = new MergeReplay(store, state)
  for (const block of blocks) {
    try {
      const { record } = await state.apply(block, { ledger, beforeCommit: merges.beforeCommit })
      await merges.applied(record, block.id)
    } catch (err) {
      // A record the protocol refuses (the audit listed it) holds no checkpoint anyone follows.
      if (!(err instanceof ConclaveError)) throw err
    }
  }
  const charter = state.charter?.record
  if (charter === undefined) throw new AuditFailedError(`the ledger of ${dir} has no charter`)
  const checkpoints = new Map<number, ModelRef>([[0, charter.initial]])
  for (const [round, r] of state.rounds) if (r.checkpoint !== undefined) checkpoints.set(round, r.checkpoint.record.model)
  return { charter, checkpoints }
}

/** What report.json says each round's global model scored (none where the run wrote no report.json, or one that does not parse). */
