import { writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { ConclaveError, ConfigError } from '../core/errors.ts'
import { consoleLogger, warningLogger, type Logger } from '../core/logger.ts'
import { CONFIG_TEMPLATE, parseRunConfig, readConfigFile, type RunConfig, type RunConfigInput } from '../federation/config.ts'
import type { DriverFactory } from '../federation/driver.ts'
import { roundTable, type RunReport } from '../federation/report.ts'
import { readRunConfig, runFederation, writeReport, type RunProgress } from '../federation/run.ts'
import { refusedLines, uncountedLines, type AuditReport } from '../federation/audit.ts'
import { auditRunDir } from './audit-dir.ts'
import { chatCommand } from './chat.ts'
import { dashboardCommand, dashboardForRun, untilStopped } from './dashboard.ts'
import { exportCommand, predictCommand } from './export.ts'
import { BaselineKind, runBaseline } from '../federation/baselines.ts'
import { parseMemberConfig, runMember, type MemberReport } from '../federation/member.ts'
import { preflight } from '../federation/preflight.ts'
import { PhaseAttribution } from '../federation/phases.ts'
import { ServiceUrl } from '../core/secret.ts'
import { parseFlags } from './flags.ts'

const USAGE = `conclave — federations of agents that train models together, with no central server

Usage:
  conclave run   [--agents N] [--rounds R] [--seed S] [--quorum Q] [--committee K] [--compression none|int8|topk[:F]] [--out DIR] [--config FILE] [--task classify|ner|qa] [--data DIR] [--llm policy|ollama:M|gguf:PATH] [--autopilot] [--workers W] [--phase-timing innermost|precise] [--force] [--verbose] [--dashboard [--port P]]
  conclave run   --resume DIR [--workers W] [--verbose]
  conclave dashboard DIR [--port P]
  conclave agent --config FILE [--llm policy|ollama:M|gguf:PATH] [--autopilot] [--stay] [--verbose]
  conclave agent --lobby --config FILE [--llm policy|ollama:M|gguf:PATH] [--autopilot] [--verbose]
  conclave key   FILE
  conclave audit DIR [--head ID] [--against OTHER_RUN_DIR] [--kubo URL] [--json]
  conclave export DIR [--round R] --out DIR2 [--force]
  conclave predict DIR2 [--in FILE.jsonl] [--out FILE.jsonl]
  conclave chat  DIR [--agent NAME] [--llm policy|ollama:M|gguf:PATH]
  conclave init  [--out FILE]
  conclave baseline centralized|fedavg|local [--task classify|ner|qa] [--agents N] [--rounds R] [--seed S] [--config FILE] [--data DIR] [--json]

run     N participants in this process: train, publish, anchor, vote, merge; then audit.
        --quorum takes a count (4), a fraction of the peers (0.75) or "majority".
        --committee K: each proposal is judged by K peers drawn from the ledger, the
        quorum counted among them (docs/committees.md).
        --compression: how updates travel, fixed in the charter: none, int8, or topk:F
        (each tensor's largest F of coordinates, with error feedback; docs/compression.md).
        Each participant is a LangGraph agent; --llm picks the model behind its loop
        (default: policy, the deterministic protocol policy); --autopilot runs plain code instead.
        --task picks the learning task; --data points it at your own dataset folder
        (classify: train.jsonl/test.jsonl; ner: train.conll/test.conll).
        --resume DIR continues a run that was stopped, from its ledger, with its config.json.
        --workers W: threads that train the participants' models at once (default 1: on
        the main thread; try the cores Node sees where they are free). The same model either way.
        --phase-timing precise charges each instant of report.json's phases to the member code
        that ran in it (async hooks: a run takes about a fifth longer); innermost (default)
        charges it to the phase opened last, which overlapping members blur.
        --dashboard serves the run's dashboard while it runs, and after it until Ctrl-C.
dashboard  A read-only page on 127.0.0.1 (default port 8787) that follows a run directory as
        its records land: the round timeline, each proposal with its votes and rationales,
        learning curve, vote heatmap, reputation, teacher spend and the ledger DAG.
        GET /api/state (JSON), GET /events (one server-sent event per new record).
agent   One member of a federation as its own process (one per machine): shares the bus room
        (Matrix) and the content store (kubo) with the others, keeps its own copy of the
        ledger (ledger.kind replica), runs its rounds, then audits its copy. --stay keeps it
        in the room answering researchers until Ctrl-C.
        --lobby: no federation yet; the agent waits in the room (the config's federation, with
        no members) until an allow-listed researcher types !federate task=classify rounds=2,
        federates with the agents that answer, posts the result in the call's thread, and
        waits for the next call until Ctrl-C.
key     Creates a keystore at FILE if there is none, and prints its DID (for members: lists).
audit   Replays DIR's ledger and store, re-derives every decision and the model hash, and
        checks that nothing under ledger/ and store/ is missing, extra or changed since the
        run signed its head. --head ID: the ledger must end at that head (as \`run\` printed it);
        --against: another copy of the run must hold the same ledger, not more and not less.
        --kubo URL: the content is on that kubo node (a member's directory of \`conclave agent\`).
        Reads only. Exits 0 only when everything verifies; names the first thing that does not.
export  Writes the global model of round R (default: the last checkpoint) to DIR2, with all a
        predictor needs: model.safetensors (its sha-256 is the run's model hash), predictor.json
        (vocabulary, features, labels), task.json and a model card (README.md) naming the ledger
        head and the audit. Reads DIR only, and refuses it unless its audit passes. DIR2 must be
        new or empty; --force replaces an earlier export there, never anything else.
predict Runs an export on JSONL examples, one per line ({"text"} for classify, {"tokens"} for
        ner, {"question"} for qa; an "id" is copied through), from stdin or --in (at most
        256 MiB), to stdout or --out. A bad line is named on stderr and skipped; the exit code
        is then 1.
chat    Talk in the terminal to the agents of a run in DIR, finished or still going, loaded
        read-only (nothing is written into DIR): why an agent voted as it did, the accuracy
        trend, reputations, what a round merged, its tools, status. Answers come from the
        ledger as it stands, worded by the chat policy, or by a model with --llm. /help inside.
init    Writes a commented config file (default conclave.yaml).
baseline  The references a federation is judged against, on the same data and seeds:
        one model trained on all data pooled, or FedAvg of every update with no vote.`

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'run': return await run(rest)
      case 'agent': return await agentCommand(rest)
      case 'key': return await keyCommand(rest)
      case 'audit': return await auditCommand(rest)
      case 'chat': return await chatCommand(rest, { input: process.stdin, output: process.stdout })
      case 'dashboard': return await dashboardCommand(rest)
      case 'export': return await exportCommand(rest)
      case 'predict': return await predictCommand(rest)
      case 'init': return await init(rest)
      case 'baseline': return await baseline(rest)
      case undefined: case '-h': case '--help': case 'help':
        process.stdout.write(USAGE + '\n')
        return command === undefined ? 2 : 0
      default:
        process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`)
        return 2
    }
  } catch (err) {
    if (err instanceof ConclaveError) {
      process.stderr.write(`conclave: ${err.name} (${err.code}): ${err.message}\n`)
      return 1
    }
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`conclave: ${err.message}\n\n${USAGE}\n`)
      return 2
    }
    throw err
  }
}

/**
 * `--compression none|int8|topk|topk:F` as the config's setting (the config's schema checks it).
 * topk merges by fedavg-sparse unless the config file names an aggregation: plain FedAvg moves a
 * coordinate one member sent a fraction as far (classify dev: 48.51% against 60.71%, docs/compression.md).
 */
function compressionFlag (flag: string | undefined, fromFile: RunConfigInput): Pick<RunConfigInput, 'compression' | 'aggregation'> {
  if (flag === undefined) return {}
  const topk = /^topk(?::(.+))?$/.exec(flag)
  if (topk === null) return { compression: flag as RunConfigInput['compression'] }
  return { compression: topk[1] === undefined ? 'topk' as RunConfigInput['compression'] : { kind: 'topk', fraction: Number(topk[1]) }, ...(fromFile.aggregation === undefined ? { aggregation: 'fedavg-sparse' } : {}) }
}

async function run (args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      agents: { type: 'string' },
      rounds: { type: 'string' },
      seed: { type: 'string' },
      quorum: { type: 'string' },
      committee: { type: 'string' },
      compression: { type: 'string' },
      out: { type: 'string', default: 'runs/latest' },
      config: { type: 'string' },
      task: { type: 'string' },
      data: { type: 'string' },
      llm: { type: 'string' },
      autopilot: { type: 'boolean', default: false },
      workers: { type: 'string' },
      'phase-timing': { type: 'string' },
      force: { type: 'boolean', default: false },
      resume: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      dashboard: { type: 'boolean', default: false },
      port: { type: 'string' }
    },
    strict: true
  })
  if (values.port !== undefined && !values.dashboard) throw new ConfigError('--port sets the dashboard\'s port: give --dashboard too')
  const trainWorkers = integer('workers', values.workers).workers ?? 1
  if (trainWorkers < 1) throw new ConfigError('--workers must be at least 1')
  const phaseAttribution = PhaseAttribution.safeParse(values['phase-timing'] ?? 'innermost').data
  if (phaseAttribution === undefined) throw new ConfigError('--phase-timing takes innermost or precise')
  if (values.resume !== undefined) {
    const mixed = (['agents', 'rounds', 'seed', 'quorum', 'committee', 'compression', 'config', 'task', 'data', 'llm', 'autopilot', 'force'] as const).filter(k => values[k] !== undefined && values[k] !== false)
    if (mixed.length > 0) throw new ConfigError(`--resume continues a run as its config.json says; drop --${mixed.join(', --')}`)
  }
  const fromFile: RunConfigInput = values.config === undefined ? {} : await readConfigFile(values.config)
  const agent = agentFlags(fromFile.agent, values)
  const config = values.resume !== undefined
    ? await readRunConfig(resolve(values.resume))
    : parseRunConfig({
      ...fromFile,
      ...taskFlags(fromFile, values.task, values.data),
      ...integer('agents', values.agents),
      ...integer('rounds', values.rounds),
      ...integer('seed', values.seed),
      ...(values.quorum === undefined ? {} : { quorum: values.quorum }),
      ...integer('committee', values.committee),
      ...compressionFlag(values.compression, fromFile),
      agent
    })
  const out = resolve(values.resume ?? values.out)
  await preflight(config)
  const logger = values.verbose ? consoleLogger : warningLogger
  const driver = config.agent.driver === 'autopilot' ? undefined : await agentsFor(config, values.config, logger)
  process.stderr.write(`conclave run: ${config.agents} ${config.agent.driver === 'agents' ? `agents (model: ${config.agent.llm})` : 'participants on autopilot'}, ${config.rounds} rounds, seed ${config.seed}, quorum ${JSON.stringify(config.quorum)}${config.committee === undefined ? '' : ` within committees of ${config.committee}`} → ${out}\n`)
  const dashboard = values.dashboard ? await dashboardForRun(out, values.port) : undefined
  try {
    const code = await runAndAudit(config, { out, shownOut: values.resume ?? values.out, force: values.force, resume: values.resume !== undefined, configFile: values.config, logger, verbose: values.verbose, driver, trainWorkers, phaseAttribution })
    if (dashboard !== undefined) {
      process.stderr.write(`dashboard: still at ${dashboard.url} (Ctrl-C to stop)\n`)
      await untilStopped()
    }
    return code
  } finally {
    await dashboard?.close()
  }
}

async function runAndAudit (config: RunConfig, options: { out: string, shownOut: string, force: boolean, resume: boolean, configFile?: string, logger: Logger, verbose: boolean, driver?: DriverFactory, trainWorkers: number, phaseAttribution: PhaseAttribution }): Promise<number> {
  const { out } = options
  let code = 1
  // Audited while the run still holds its directory: a process started there meanwhile would have been audited, its report written over.
  const onSealed = async (report: RunReport): Promise<void> => {
    process.stdout.write(`\n${roundTable(report)}\n\nrejection rate ${(100 * report.rejectionRate).toFixed(1)}% · backend ${report.backend} · ${report.wallSeconds.toFixed(1)} s · model sha-256 ${report.modelHash}\n`)
    process.stderr.write('auditing the run directory…\n')
    const audit = await auditRunDir(out)
    await writeReport(out, { ...report, audit })
    if (!audit.ok) {
      process.stdout.write(`audit FAILED at record ${audit.firstFailure?.seq}: ${audit.firstFailure?.error.name}: ${audit.firstFailure?.error.message}\n`)
      return
    }
    const same = audit.modelHash === report.modelHash
    process.stdout.write(`audit ok: ${audit.records} records (${audit.proposals} proposals, ${audit.votes} votes, ${audit.decisions} decisions), ${replayedVotes(audit)}, replayed model ${same ? 'matches' : 'DIFFERS FROM'} the run's\n`)
    for (const line of [...refusedLines(audit), ...uncountedLines(audit)]) process.stdout.write(line + '\n')
    process.stdout.write(`head ${audit.head?.id}: keep it to check this directory later with conclave audit ${options.shownOut} --head ${audit.head?.id}\n`)
    process.stdout.write(`report: ${join(out, 'report.md')} · ${join(out, 'report.json')} · ${join(out, 'learning-curve.svg')}\n`)
    code = same ? 0 : 1
  }
  await runFederation(config, { out, force: options.force, resume: options.resume, configFile: options.configFile, logger: options.logger, onProgress: progress(options.verbose), driver: options.driver, trainWorkers: options.trainWorkers, phaseAttribution: options.phaseAttribution, onSealed })
  return code
}

async function baseline (args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    options: { agents: { type: 'string' }, rounds: { type: 'string' }, seed: { type: 'string' }, config: { type: 'string' }, task: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true
  })
  const kind = BaselineKind.safeParse(positionals[0])
  if (!kind.success || positionals.length > 1) throw new ConfigError('usage: conclave baseline centralized|fedavg|local [--task classify|ner|qa] [--agents N] [--rounds R] [--seed S] [--config FILE] [--data DIR] [--json]')
  const fromFile: RunConfigInput = values.config === undefined ? {} : await readConfigFile(values.config)
  const config = parseRunConfig({ ...fromFile, ...taskFlags(fromFile, values.task, values.data), ...integer('agents', values.agents), ...integer('rounds', values.rounds), ...integer('seed', values.seed) })
  const report = await runBaseline(kind.data, config, {
    onRound: r => { if (!values.json) process.stderr.write(`round ${r.round}: ${r.metric.name} ${r.metric.value.toFixed(4)}\n`) }
  })
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : `${kind.data}: ${report.rounds.at(-1)?.metric.name} ${report.rounds.at(-1)?.metric.value.toFixed(4)} after ${config.rounds} rounds (seed ${config.seed}, ${report.wallSeconds.toFixed(1)} s)\n`)
  return 0
}

async function agentCommand (args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: { config: { type: 'string' }, llm: { type: 'string' }, autopilot: { type: 'boolean', default: false }, stay: { type: 'boolean', default: false }, lobby: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false } },
    strict: true
  })
  if (values.config === undefined) throw new ConfigError('usage: conclave agent --config FILE (member, members, key, dir, and the run settings; see README "Run a federation across machines")')
  const fromFile = await readConfigFile(values.config) as Record<string, unknown>
  const agent = agentFlags(fromFile.agent, values)
  if (values.lobby) return lobbyCommand({ ...fromFile, agent }, values.config, values.verbose)
  const config = parseMemberConfig({ ...fromFile, agent }, dirname(resolve(values.config)))
  await preflight(config.run)
  const logger = values.verbose ? consoleLogger : warningLogger
  const driver = config.run.agent.driver === 'autopilot' ? undefined : await agentsFor(config.run, values.config, logger)
  const stop = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { stop.abort(signal) })
  const say = (line: string): void => { process.stderr.write(`${line}\n`) }
  say(`conclave agent: ${config.name} of ${config.members.length} in ${config.run.federation} → ${config.dir}`)
  let report: MemberReport
  try {
    report = await runMember(config, { logger, driver, say, stay: values.stay, signal: stop.signal })
  } catch (err) {
    // Being told to stop is how a member ends, not a fault: whatever it was doing gave way to the signal.
    if (!stop.signal.aborted) throw err
    say(`conclave agent: ${config.name} stopped on ${String(stop.signal.reason)}; its ledger copy and memory in ${config.dir} are kept`)
    return 0
  }
  process.stdout.write(JSON.stringify({ name: report.name, rounds: report.rounds, audit: { ok: report.audit.ok, records: report.audit.records, modelHash: report.audit.modelHash }, head: report.head }) + '\n')
  return report.audit.ok ? 0 : 1
}

/** `conclave agent --lobby`: waits in the room for researchers' calls until stopped. */
async function lobbyCommand (settings: Record<string, unknown>, configPath: string, verbose: boolean): Promise<number> {
  const { parseLobbyConfig, runLobby } = await import('../federation/lobby/lobby-member.ts')
  const config = parseLobbyConfig(settings, dirname(resolve(configPath)))
  await preflight(config.run)
  const logger = verbose ? consoleLogger : warningLogger
  const driver = config.run.agent.driver === 'autopilot' ? undefined : await agentsFor(config.run, configPath, logger)
  const stop = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { stop.abort(signal) })
  const say = (line: string): void => { process.stderr.write(`${line}\n`) }
  try {
    await runLobby(config, { logger, driver, say, signal: stop.signal })
  } catch (err) {
    if (!stop.signal.aborted) throw err
  }
  say(`conclave agent: ${config.name} left the lobby on ${String(stop.signal.reason)}; its federations are in ${config.dir}`)
  return 0
}

async function keyCommand (args: string[]): Promise<number> {
  const { positionals } = parseFlags({ args, allowPositionals: true, strict: true })
  if (positionals.length !== 1) throw new ConfigError('usage: conclave key FILE')
  const { loadOrCreateKeystore } = await import('../identity/index.ts')
  process.stdout.write(`${(await loadOrCreateKeystore(resolve(positionals[0] as string))).did}\n`)
  return 0
}

async function auditCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    options: { json: { type: 'boolean', default: false }, head: { type: 'string' }, against: { type: 'string' }, kubo: { type: 'string' } },
    allowPositionals: true,
    strict: true
  })
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new ConfigError('usage: conclave audit DIR [--head ID] [--against OTHER_RUN_DIR] [--kubo URL] [--json]')
  const kubo = values.kubo === undefined ? undefined : ServiceUrl.safeParse(values.kubo).data
  if (values.kubo !== undefined && kubo === undefined) throw new ConfigError(`--kubo ${values.kubo} is not a service URL (http://127.0.0.1:5001)`)
  const report = await auditRunDir(resolve(dir), { head: values.head, against: values.against === undefined ? undefined : resolve(values.against), kubo })
  if (values.json) {
    const { checkpoints: _checkpoints, ...contract } = report
    process.stdout.write(JSON.stringify(contract, null, 2) + '\n')
  } else if (report.ok) {
    process.stdout.write(`ok: ${report.records} records, ${report.proposals} proposals, ${report.votes} votes, ${humanVotes(report)}${report.decisions} decisions, ${report.checkpoints} checkpoints\n${replayedVotes(report)}\nmodel sha-256 ${report.modelHash}\nhead ${report.head?.id} (signed by ${report.head?.signedBy.length} members)\n`)
    for (const line of [...refusedLines(report), ...uncountedLines(report)]) process.stdout.write(line + '\n')
  } else {
    const f = report.firstFailure
    const where = f?.type === null && f.issuer === null ? `after record ${f.seq}${f.block === null ? '' : ` (block ${f.block})`}` : `at record ${f?.seq} (block ${f?.block ?? 'unparseable'}, ${f?.type ?? 'unknown type'}${f?.issuer ? ` by ${f.issuer}` : ''})`
    process.stdout.write(`FAILED ${where}: ${f?.error.name}: ${f?.error.message}\n`)
  }
  return report.ok ? 0 : 1
}

/** Researchers' votes, when there are any, and whether the decisions counted them. */
function humanVotes (report: Pick<AuditReport, 'humanVotes' | 'humanVotesCounted'>): string {
  return report.humanVotes === 0 ? '' : `${report.humanVotes} human votes (${report.humanVotesCounted ? 'counted' : 'advisory'}), `
}

/** Whether the audit decided every vote again by the charter's acceptance terms, in words. */
function replayedVotes (report: Pick<AuditReport, 'votesReplayed'>): string {
  return report.votesReplayed ? "every vote re-decided by the charter's acceptance terms" : 'votes not replayable (the charter states no acceptance terms)'
}

async function init (args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: { out: { type: 'string', default: 'conclave.yaml' } }, strict: true })
  // 'wx' (O_EXCL) refuses anything at the path, a link too: access() then a write followed a dangling link (found red-teaming).
  await writeFile(values.out, CONFIG_TEMPLATE, { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(err.code === 'EEXIST' ? `${values.out} exists; not overwriting it` : `cannot write ${values.out}: ${err.message}`)
  })
  process.stdout.write(`wrote ${values.out}; run it with: conclave run --config ${values.out}\n`)
  return 0
}

/**
 * `--task KIND` picks the task (keeping the file's task settings when it names the same
 * kind); `--data DIR` points it at a dataset folder.
 */
function taskFlags (fromFile: RunConfigInput, kind: string | undefined, dir: string | undefined): RunConfigInput {
  if (kind === undefined && dir === undefined) return {}
  const base = fromFile.task ?? { kind: 'classify' }
  const task = kind === undefined || kind === base.kind ? base : { kind }
  return { task: { ...task, ...(dir === undefined ? {} : { data: resolve(dir) }) } as RunConfigInput['task'] }
}

/**
 * `--llm` and `--autopilot` over the config file's agent section. A section that is not a
 * mapping is left as it is for the schema to refuse ("expected object"): spread, `true` would
 * vanish into the defaults and `autopilot` become keys "0" to "8".
 */
function agentFlags (section: unknown, flags: { llm?: string, autopilot: boolean }): unknown {
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) return section
  return { ...section, ...(flags.llm === undefined ? {} : { llm: flags.llm }), ...(flags.autopilot ? { driver: 'autopilot' } : {}) }
}

function integer (name: string, value: string | undefined): Record<string, number> {
  if (value === undefined) return {}
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${name} must be a whole number, not "${value}"`)
  return { [name]: Number(value) }
}

/** A round's progress on one line, or a line per step when `--verbose` logs lines between them. */
const progress = (verbose: boolean) => (event: RunProgress): void => {
  const end = verbose ? '\n' : ' '
  switch (event.type) {
    case 'conclave:run:start':
      process.stderr.write(`TF.js backend: ${event.backend}\n`)
      break
    case 'conclave:round:start':
      process.stderr.write(`round ${event.round}/${event.rounds}:${end}`)
      break
    case 'conclave:round:propose':
      process.stderr.write(`${event.agent} trains…${end}`)
      break
    case 'conclave:round:end': {
      const r = event.report
      process.stderr.write(`${r.accepts}/${r.proposals} accepted, ${r.metric.name} ${r.metric.value.toFixed(4)} (${r.wallSeconds.toFixed(1)} s)\n`)
    }
  }
}

/** The agent driver for a run: plugin tools load relative to the config file. */
async function agentsFor (config: RunConfig, configPath: string | undefined, logger: Logger): Promise<DriverFactory> {
  const { agentDriver } = await import('../../agents/index.ts')
  const { loadPluginTools } = await import('../../tools/index.ts')
  const base = configPath === undefined ? process.cwd() : dirname(resolve(configPath))
  const plugins = await loadPluginTools(config.agent.tools, base)
  const { llm, llmTimeoutSeconds, maxSteps, personas } = config.agent
  const prompt = config.agent.prompt === undefined ? undefined : resolve(base, config.agent.prompt)
  return agentDriver({ llm, llmTimeoutMs: llmTimeoutSeconds * 1000, plugins, maxSteps, prompt, personas, seed: config.seed, logger })
}
