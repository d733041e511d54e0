import { readFile } from 'node:fs/promises'
import { parseDocument } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../core/errors.ts'
import { assertReachable, parseQuorum, QuorumRule } from '../core/quorum.ts'
import { AggregationRule, HumanVotes, MAX_COMMITTEE, MatrixUserId } from '../core/records.ts'
import { LedgerConfig } from '../ledger/index.ts'
import { LlmSpec } from '../llm/spec.ts'
import { TaskConfig } from '../ml/task.ts'
import { StoreConfig } from '../storage/index.ts'
import { TeacherConfig } from '../teachers/index.ts'
import { BusConfig } from '../transport/index.ts'
import { Attack } from './attacks.ts'
import { AcceptanceRuleName, Compression, Judgement, Robustness, RULE_SETTINGS, unreadSetting } from '../core/terms.ts'
import { MAX_MEMBERS } from '../core/limits.ts'
import { MAX_ALPHA } from '../data/partition.ts'

/** topk's share of coordinates sent when none is given. */
export const DEFAULT_TOPK_FRACTION = 0.1

/** `4`, `0.75`, `majority` or the full object. */
const QuorumInput = z.union([QuorumRule, z.string().transform(s => parseQuorum(s)), z.number().transform(n => parseQuorum(String(n)))])

/** Without a committee every peer judges each proposal, and its decision lists each of their votes: 127 of them still fit in one record. */
export const MAX_AGENTS_WITHOUT_COMMITTEE = 128

/** Everything `conclave run` needs; every field has a documented default. */
export const RunConfig = z.object({
  /** The federation's id, used as its room name. @default "conclave-local" */
  federation: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/).default('conclave-local'),
  /** Participants in this process; beyond MAX_AGENTS_WITHOUT_COMMITTEE only with a committee. @default 5 */
  agents: z.number().int().min(2).max(MAX_MEMBERS).default(5),
  /** Rounds to run. @default 3 */
  rounds: z.number().int().min(1).max(1000).default(3),
  /** Seeds partitioning, initial weights and every agent's training. @default 42 */
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
  /**
   * Accepts that merge a proposal. A majority of the peers (2 of 4 at 5 members): honest
   * proposals still merge while fewer than half the members are hostile, and hostile ones
   * need an honest accept; "every peer" lets one hostile voter veto everything.
   * @default half the peers, rounded up (⌈(N−1)/2⌉)
   */
  quorum: QuorumInput.default({ kind: 'fraction', fraction: 0.5 }),
  /**
   * k: each proposal is judged by k of its proposer's peers, drawn from the round's base
   * model and the proposer, and `quorum` counts within those k (half of them: ⌈k/2⌉). Each
   * member then judges about k proposals a round instead of N − 1. docs/committees.md gives
   * the odds that hostile members hold a committee, and the k to choose. At most 64, so a
   * decision naming its committee and votes fits in one record.
   * @default none: every peer judges every proposal
   */
  committee: z.number().int().positive().max(MAX_COMMITTEE).optional(),
  /** Seconds after a proposal during which votes on it count. @default 600 */
  windowSeconds: z.number().int().positive().max(86_400).default(600),
  /**
   * How a peer decides on an update from what it measured (src/federation/acceptance.ts):
   * `tolerance` accepts within `tolerance` plus `relativeTolerance`; `improve` accepts an
   * update that gains at least `minGain` of what the peer's own update of the round gains
   * it; `marginal` judges once the round's proposals are in (or its proposal window, the
   * first half of `windowSeconds`, has passed) and accepts an update the round's combined
   * update is better with than without, by `minGain` of what the combination gains; `classwise`
   * asks the same and, class by class over the peer's validation examples, that the classes the
   * update helps gain `classRatio` times what the classes it hurts lose. The founder writes this,
   * the two tolerances, `voteScale` and `robustness` into the charter; every member then
   * judges by the charter's terms, whatever its own config says. @default tolerance
   */
  acceptance: AcceptanceRuleName.default('tolerance'),
  /**
   * A peer accepts an update that lowers its judge's score on its validation examples by at
   * most this much (plus `relativeTolerance`). @default the task's own: 0.1 nats of
   * log-likelihood for classify, 0.01 nats per token for ner and qa (0.01 of the metric where
   * a task judges by its metric)
   */
  tolerance: z.number().min(0).max(1).optional(),
  /**
   * On top of `tolerance`, the share of what the federation has taught a peer (its judge's
   * score at the global model minus at the initial one) that an update may undo: honest
   * non-IID updates pull against each other harder as the model learns. @default the task's
   * own: 0.1 for classify (docs/results/vote-rule-selection.md), 0 for ner and qa
   */
  relativeTolerance: z.number().min(0).max(1).optional(),
  /**
   * For `acceptance: improve`: the share of what a peer's own update of the round gains it
   * on its validation examples that another member's update must gain it too; for
   * `marginal`: the share of what the round's combined update gains it that an update must add.
   * Negative: the share it may cost (a slack for honest updates that pull against each other).
   * @default 0.1 for improve, 0 for marginal, classwise and standing, −0.1 for probation (chosen on classify's dev split: docs/results/robustness-selection.md)
   */
  minGain: z.number().min(-1).max(1).optional(),
  /**
   * For `acceptance: classwise`: with an update in the round's combination, how many times what
   * the classes of a peer's validation examples it hurts lose (weighted by their examples) the
   * classes it helps must gain. 1 is the marginal rule.
   * @default 1.8 (chosen on classify's dev split: docs/results/robustness-selection.md)
   */
  classRatio: z.number().min(1).max(100).optional(),
  /**
   * For `acceptance: probation` (the standing rule, plus a probation): the share of what a
   * peer's own update gains it that the update of a member none of whose updates has been
   * decided yet must gain it too. @default 0.1 (the improve rule's, chosen on classify's dev split)
   */
  probationGain: z.number().min(0).max(1).optional(),
  /**
   * For `acceptance: probation`: only a peer whose own update of the round raises its own score
   * may accept the update of a member on probation (its yardstick for the improve test is that
   * gain; two members training on random labels otherwise vouch for each other). @default false
   */
  gainingVouchers: z.boolean().default(false),
  /**
   * For `acceptance: probation`: a member in bad standing (its `strikes` updates rejected) must
   * pass the test a member on probation passes, besides the classwise rule. @default false
   */
  badOnProbation: z.boolean().default(false),
  /**
   * For `acceptance: probation` with `strikes` 2 or more: a member whose update was refused on
   * probation, short of its strikes and never merged, is judged as in good standing (by the
   * marginal rule) rather than on probation again. The probation test refuses small honest
   * members round after round (classify's dev split: robustness-selection.md); with the term one
   * refusal is its whole cost. A hostile member refused once is then judged by the marginal rule
   * alone until a second rejection puts it in bad standing. @default false
   */
  probationOnce: z.boolean().default(false),
  /**
   * For `acceptance: probation`: the share of what a peer's own update sharpens its model's
   * predictions on its validation examples (lowers their mean entropy) that the update of a
   * member on probation must sharpen them too; updates on half-random labels teach the model to
   * be unsure. Needs a judge that measures it (classify's). Omitted: not asked.
   */
  minSharpening: z.number().min(0).max(1).optional(),
  /**
   * For `minSharpening`: `round` measures a member on probation's update against the round's
   * median update as the peer measures it (its own and every other it combines), and where that
   * flattens the predictions, lets the update flatten them at most `2 − minSharpening` times as
   * much. Omitted: against the peer's own update, and no refusal where that does not sharpen.
   */
  sharpeningYardstick: z.literal('round').optional(),
  /**
   * For `acceptance: probation`: the share of the round's median movement of a peer's predictions
   * on its validation examples (the mean KL divergence from the global model's; its own update's
   * and every other it combines) that the update of a member on probation must move them too;
   * updates on half-random labels carry half the signal and move them less. Needs a judge that
   * measures it (classify's). Omitted: not asked.
   */
  minMovement: z.number().gt(0).max(1).optional(),
  /**
   * Whether the votes of a member whose update the federation rejected in an earlier round stop
   * counting, and the quorum is then a share of the peers whose votes count (its `count`, all of
   * them where fewer count). With two of five members hostile and quorum 2 of 4, their rejects
   * leave an honest update needing both other honest peers; once their own updates were rejected,
   * one of the two suffices. Derived from decision records, so every peer and the audit count alike.
   * @default false
   */
  excludeRejected: z.boolean().default(false),
  /**
   * For the standing and probation rules: how many of a member's updates the federation must
   * have rejected before it is judged by the strict (classwise) rule. With 2, a member rejected
   * once and never merged stays on probation, one merged since stays in good standing: one false
   * rejection of an honest update no longer costs it the rest of the run. `excludeRejected`
   * still drops the votes of a member rejected once. @default 1
   */
  strikes: z.number().int().min(1).max(100).default(1),
  /**
   * How a peer measures an update: `full` scores global + Δw (as if the update replaced the
   * round), `share` scores global + Δw / N, the share one of N members' updates gets in a
   * FedAvg merge. Chosen on the dev split (docs/results/vote-rule-selection.md): `full`
   * rejected most honest but specialised updates under non-IID data. @default share
   */
  voteScale: z.enum(['full', 'share']).default('share'),
  /** Where reports score the global model: `test`, or `dev` for choosing settings without touching test. @default test */
  evalSplit: z.enum(['test', 'dev']).default('test'),
  /**
   * Bounds a peer puts on an update's geometry before its judge's score counts: its norm and
   * direction against the peer's own update of the round, and its likeness to earlier
   * updates (a re-sent one). `false` turns them off. @default the bounds' defaults
   */
  robustness: z.union([z.literal(false), Robustness]).default(Robustness.parse({})),
  /** How each agent's share of the training data is drawn. @default IID (dirichlet: non-IID by label, α = 1) */
  partition: z.object({
    kind: z.enum(['iid', 'dirichlet']).default('iid'),
    alpha: z.number().positive().max(MAX_ALPHA, `α is at most ${MAX_ALPHA}: by then each label is already split evenly among the members`).default(1)
  }).strict().prefault({}),
  aggregation: AggregationRule.default('fedavg'),
  /**
   * Server momentum β (FedAvgM): a round's step is the merged update plus β times the
   * previous round's step, which every participant and the audit derive from the two
   * checkpoints before. A round that merges nothing does not move, and restarts it. @default 0
   */
  momentum: z.number().min(0).lt(1).default(0),
  /**
   * How members' updates travel, written into the charter: `none` (F32), `int8` (a quarter
   * of the bytes) or `{ kind: topk, fraction }` (the largest ⌈fraction · n⌉ coordinates of
   * each tensor; what is not sent is added to the member's next update). `int8` and `topk`
   * alone stand for their defaults. @default none
   */
  compression: z.union([
    z.enum(['none', 'int8']).transform(kind => ({ kind })),
    z.literal('topk').transform(() => ({ kind: 'topk' as const, fraction: DEFAULT_TOPK_FRACTION })),
    Compression
  ]).default({ kind: 'none' }),
  task: TaskConfig.prefault({ kind: 'classify' }),
  /** Who answers the questions of a task learned by distillation (qa). @default the dataset's own answers */
  teacher: TeacherConfig.prefault({ kind: 'dataset' }),
  store: StoreConfig.prefault({ kind: 'helia' }),
  ledger: LedgerConfig.prefault({ kind: 'tangle' }),
  bus: BusConfig.prefault({ kind: 'local' }),
  /**
   * Researchers' Matrix ids (`@alice:example.org`): invited to the federation's room, and the
   * only people whose commands that act (`!pause`, `!resume`, `!propose`) the agents obey,
   * besides the members themselves. @default nobody
   */
  researchers: z.array(MatrixUserId).max(256).default([]),
  /**
   * Whether researchers' 👍/👎 on a proposal, which members anchor as human votes, count
   * toward the quorum (`counted`) or only stand beside the members' votes. The charter
   * states it, with the researchers. @default advisory
   */
  humanVotes: HumanVotes.default('advisory'),
  /**
   * How many members must anchor a researcher's reaction before it is their vote: a reaction
   * is on one member's word otherwise, and under `counted` a forged 👍 buys a merge. Fewer
   * hostile members than this forge none. The charter states it.
   * @default 2 where researchers' votes are counted (and there are two members), else 1
   */
  humanWitnesses: z.number().int().positive().optional(),
  /** Hostile agents, for robustness experiments. @default none */
  attacks: z.array(Attack).default([]),
  /** Who drives each participant. */
  agent: z.object({
    /** `agents`: a LangGraph agent per participant decides through the protocol tools; `autopilot`: plain code proposes and votes. @default agents */
    driver: z.enum(['agents', 'autopilot']).default('agents'),
    /** The model behind each agent's loop: policy, ollama:<model> or gguf:<path>. @default policy */
    llm: LlmSpec.default('policy'),
    /** Plugin tool modules (paths relative to the config file), each exporting defineTool(...) or a LangChain tool. @default none */
    tools: z.array(z.string().min(1)).default([]),
    /** Most model steps an agent takes for one event. @default 8 */
    maxSteps: z.number().int().min(1).max(64).default(8),
    /**
     * Longest one call of the agent's model may take, in seconds: no answer by then (a stalled
     * server) counts as an invalid answer, retried once, then the protocol policy takes the step.
     * @default 300 (a slow CPU's Gemma 3 270M step took up to 250 s)
     */
    llmTimeoutSeconds: z.number().int().min(1).max(86_400).default(300),
    /** Who decides a vote's accept: `rule` (the charter's acceptance rule), `model` (the agent's model; the protocol alone binds it) or `guarded` (the model, but never accepting what the rule rejects). Recorded in every vote. @default rule */
    judgement: Judgement.default('rule'),
    /** The agents' system prompt: a template file (relative to the config file) with {name}, {persona} and {judgement} placeholders. @default prompts/participant.md */
    prompt: z.string().min(1).optional(),
    /** A persona per agent, by name (`agent-2: a cautious reviewer who …`), put in its prompt. @default none */
    personas: z.record(z.string().regex(/^agent-\d+$/, 'personas are keyed by agent name (agent-2)'), z.string().min(1).max(2000)).default({}),
    /**
     * Messages an agent answers per sender (each may cost a model call): at most `messages` in
     * any `seconds`; past that, one note that the sender must wait, then silence until the
     * window has room. `others`: answers in the same window to everyone but the researchers
     * together, so a flood from many accounts neither spends the agent's model without bound
     * nor crowds out the researchers (past it, one note a window). @default 6 per 60 s, 30 others
     */
    chatLimit: z.object({
      messages: z.number().int().min(1).max(10_000).default(6),
      seconds: z.number().int().min(1).max(86_400).default(60),
      others: z.number().int().min(1).max(100_000).default(30)
    }).strict().prefault({})
  }).strict().prefault({})
}).strict().superRefine((config, ctx) => {
  if (config.committee === undefined && config.agents > MAX_AGENTS_WITHOUT_COMMITTEE) {
    ctx.addIssue({ code: 'custom', path: ['agents'], message: `more than ${MAX_AGENTS_WITHOUT_COMMITTEE} agents need a committee: a decision names every judge's vote, and one naming ${config.agents - 1} would not fit in a record` })
  }
  if (config.humanWitnesses !== undefined && config.humanWitnesses > config.agents) {
    ctx.addIssue({ code: 'custom', path: ['humanWitnesses'], message: `a reaction has at most as many witnesses as the ${config.agents} members` })
  }
  const agents = config.attacks.map(a => a.agent)
  if (agents.some(a => a > config.agents)) ctx.addIssue({ code: 'custom', path: ['attacks'], message: `attacks name agents beyond the ${config.agents} in this run` })
  if (new Set(agents).size !== agents.length) ctx.addIssue({ code: 'custom', path: ['attacks'], message: 'an agent can carry one attack' })
  // A setting the chosen rule does not read is a mistake to name, not a setting to drop in silence.
  for (const setting of Object.keys(RULE_SETTINGS) as (keyof typeof RULE_SETTINGS)[]) {
    const value = config[setting]
    const named = setting === 'strikes' ? value !== 1 : value !== undefined && value !== false
    const unread = named ? unreadSetting(setting, config.acceptance) : undefined
    if (unread !== undefined) ctx.addIssue({ code: 'custom', path: [setting], message: unread })
  }
})
export type RunConfig = z.infer<typeof RunConfig>
export type RunConfigInput = z.input<typeof RunConfig>

/** Member `index`'s (0-based) base seed in a run: its training and attack draw from it, in a federation and in the FedAvg baseline alike. */
export function memberSeed (config: Pick<RunConfig, 'seed'>, index: number): number {
  return config.seed * 7919 + index
}

/** Member `index`'s (0-based) name: agent-1, agent-2, … as the logs, reports and attacks (`agent: N`) call it. */
export function memberName (index: number): string {
  return `agent-${index + 1}`
}

/** Validates a config object; every problem is named with its path. */
export function parseRunConfig (input: unknown): RunConfig {
  const result = RunConfig.safeParse(input)
  if (!result.success) throw new ConfigError(`invalid config:\n${z.prettifyError(result.error)}`, { cause: result.error })
  assertReachable(result.data.quorum, result.data.agents, result.data.committee)
  return result.data
}

/** Reads a YAML or JSON config file (JSON is YAML). */
export async function readConfigFile (path: string): Promise<RunConfigInput> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}`, { cause: err })
  }
  return parseConfigText(text, path)
}

/** A config file's text (YAML, or JSON, which is YAML) as settings; `source` names it in errors. */
export function parseConfigText (text: string, source: string): RunConfigInput {
  let value: unknown
  try {
    // What YAML only warns about (an unknown !tag, an ambiguous alias) is a mistake in a config.
    const doc = parseDocument(text)
    const problem = doc.errors[0] ?? doc.warnings[0]
    if (problem !== undefined) throw problem
    value = doc.toJS() ?? {}
  } catch (err) {
    // Where, never what: the parser's message quotes the lines around the fault, which may hold a token.
    const at = (err as { linePos?: Array<{ line: number, col: number }> }).linePos?.[0]
    // toJS throws a ReferenceError, without a code or a place, only for an alias it will not expand;
    // its message can name the alias, so the reason is given in our words.
    const alias = err instanceof ReferenceError ? 'aliases that would expand past the limit kept against alias bombs, or an alias naming no anchor before it' : undefined
    const what = (err as { code?: string }).code ?? alias ?? 'unreadable'
    throw new ConfigError(`${source} is not valid YAML (${what})${at === undefined ? '' : ` at line ${at.line}, column ${at.col}`}`)
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${source} must hold a mapping of settings`)
  return value as RunConfigInput
}

/** The commented config `conclave init` writes. */
export const CONFIG_TEMPLATE = `# Conclave federation config. Every key is optional; the values shown are the defaults.
# Flags given to \`conclave run\` override this file.

# The federation's id (also its room on the bus).
federation: conclave-local
# Participants in this process, and rounds to run.
agents: 5
rounds: 3
# Seeds partitioning, initial weights and every agent's training.
seed: 42
# Accepts that merge a proposal: a count (4), a fraction of the peers who may vote (1 = all
# of them; a proposer never votes on its own update) or "majority" (ceil(N/2)). Half the
# peers keeps honest proposals merging while fewer than half the members are hostile.
quorum: { kind: fraction, fraction: 0.5 }
# Committee validation: each proposal is judged by this many of its proposer's peers, drawn
# from the round's base model and the proposer, and the quorum counts within them. Omitted:
# every peer judges every proposal. See docs/committees.md before choosing one.
# committee: 5
# Seconds after a proposal during which votes on it count.
windowSeconds: 600
# How a peer decides on an update from what it measured: tolerance (the two settings below),
# or improve: an update must gain the peer at least minGain times what its own update of the
# round gains it (keeps label-flipped updates out; stricter on honest non-IID ones),
# or marginal: once the round's proposals are in, an update must make the round's combined
# update better than it is without it (by minGain of what the combination gains),
# or classwise: marginal, and the classes of the peer's validation examples the update helps
# must gain classRatio times what the classes it hurts lose (stricter on label-flipped updates),
# or standing: marginal, but classwise for a member the federation rejected in an earlier round,
# or probation: standing, and a member none of whose updates is decided yet must also pass
# improve with minGain probationGain (keeps a label-flipper out from its first round).
# The founder writes these acceptance terms (with voteScale and robustness) into the charter;
# every member judges by the charter's, and each vote signs what it measured, so the audit
# decides every vote again. A setting the chosen rule does not read is refused, not ignored
# (minGain is for every rule but tolerance).
acceptance: tolerance
# minGain: 0.1
# Whether the votes of a member the federation rejected in an earlier round stop counting, the
# quorum then a share of the peers that still count (measured with probation: robustness.md).
excludeRejected: false
# standing and probation: how many rejected updates put a member under the strict (classwise) rule.
strikes: 1
# probation: only a peer whose own update of the round gains it may accept a member on probation.
gainingVouchers: false
# probation: a member in bad standing must pass the probation test too, besides the classwise rule.
badOnProbation: false
# probation, with 2 strikes or more: a member refused on probation and never merged is judged as in
# good standing from then on, not on probation again (a second rejection still puts it in bad standing).
probationOnce: false
# probation (classify, ner): a member on probation's update must sharpen a peer's predictions at least
# this share of what the peer's own update does. NER's chosen terms use 0 with badOnProbation (an
# update on half-random tags leaves a peer's tags less sure from round 2 on; examples/hardened/ner.yaml);
# on classify no share keeps half-random labels out without refusing honest newcomers (robustness-selection.md).
# minSharpening: 0
# probation: measure minSharpening against the round's median update as the peer measures it, not the
# peer's own update alone (on classify it keeps half-random labels out with 1 of 5 members hostile, and
# refuses honest newcomers with 2: robustness-selection.md).
# sharpeningYardstick: round
# probation (classify): a member on probation's update must move a peer's predictions (the mean KL
# divergence from the global model's) at least this share of the round's median movement; updates on
# half-random labels carry half the signal and move them less. With minSharpening 0 against the round it
# keeps them all out on test, and with 2 of 5 members hostile refuses honest newcomers (robustness-selection.md).
# minMovement: 0.54
# A peer accepts an update that lowers its judge's score on its validation examples by at
# most this much (omitted: the task's own; classify judges by labels' log-likelihood with
# 0.1 nats, ner and qa by log-likelihood with 0.01 nats per token).
# tolerance: 0.01
# ... plus this share of what the federation has taught the peer since the initial model
# (its judge's score at the global model minus at the initial one; omitted: the task's own,
# 0.1 for classify, 0 for ner and qa).
# relativeTolerance: 0.1
# How a peer measures an update: share (global + Δw / N, its share of a FedAvg merge) or
# full (global + Δw, as if it replaced the round).
voteScale: share
# Where reports score the global model: test, or dev while choosing settings.
evalSplit: test
# How each agent's share of the training data is drawn: iid, or dirichlet (non-IID by label;
# alpha above 0, smaller is more skewed; at most 1e6, where each label is split evenly).
partition: { kind: iid, alpha: 1 }
# How accepted updates merge (fedavg, fedavg-share, fedavg-sparse: each coordinate over the
# updates that send it, for topk; median, trimmed-mean, krum, multi-krum, trust-weighted),
# and the server momentum on each round's step (0: none).
aggregation: fedavg
momentum: 0
# How members' updates travel (the charter fixes it): none (F32), int8 (a quarter of the
# bytes), or { kind: topk, fraction: 0.1 } (each tensor's largest 10% of coordinates; what is
# not sent is added to the member's next update). Peers and the audit refuse other bytes.
compression: none
# The learning task. data: a folder with train.jsonl / test.jsonl (and labels.json).
task:
  kind: classify
# Who answers the questions of a task learned by distillation (task kind qa): dataset (the
# dataset's own answers), ollama (model, url; timeoutSeconds bounds one answer, 300 by
# default: a slower server counts as down, and the round goes on without distilling) or
# gguf (path: a GGUF file run in-process, which also gives its token distributions,
# distilled as a KL term with weight task.kl).
# Each agent pays its own budgetTokens (omitted: no cap); answers are cached, never paid
# for twice; maxTokens caps one answer.
teacher: { kind: dataset, maxTokens: 64 }
# Where content lives: helia (embedded, under the run directory) or kubo (url: http://127.0.0.1:5001).
store: { kind: helia }
# Where records are anchored: tangle (embedded file; difficulty = proof-of-work bits) or iota.
ledger: { kind: tangle, difficulty: 8 }
# How participants talk: local (in-process), or matrix (baseUrl; each agent its own account:
# registrationSecret registers @<federation>.agent-N through the homeserver's shared secret,
# or accounts lists one { userId } per agent; a member process may give its one userId).
# Secrets are best in the environment (CONCLAVE_MATRIX_REGISTRATION_SECRET,
# CONCLAVE_MATRIX_TOKEN_<N>, CONCLAVE_MATRIX_TOKEN): one written here is never written
# anywhere else. The room is invite-only unless public: true. How to get a token or the
# secret: README, "Get a Matrix access token". For example, on scripts/services/synapse.sh's Synapse:
# bus: { kind: matrix, baseUrl: http://127.0.0.1:8008 }
bus: { kind: local }
# Researchers' Matrix ids: invited to the room; only they (and the agents) may !pause,
# !resume or !propose. Anyone else's command gets one polite refusal.
researchers: []
# Their 👍/👎 on a proposal is anchored as a human vote: advisory (beside the agents' votes)
# or counted (toward the quorum, like a member's).
humanVotes: advisory
# How many members must anchor a reaction before it is the researcher's vote (unset: 2 where
# counted, else 1): fewer hostile members than this cannot forge one.
# humanWitnesses: 2
# Bounds a peer puts on an update before its judge's score counts (false: none): its norm at
# most maxNormRatio times the peer's own update's, along the peer's update (cosine at least
# minCosine) or along an earlier update (minHistoryCosine), and no re-sent update (cosine with
# an earlier one above maxEarlierCosine). maxRoundCosine (unset: not asked): no update lying
# closer than this cosine to the mean of its round's earlier updates, a cover for something else.
robustness: { maxNormRatio: 3, minCosine: 0.03, minHistoryCosine: 0.3, maxEarlierCosine: 0.99 }
# Hostile agents for robustness experiments, e.g. [{ kind: sign-flip, agent: 5, scale: 5 }].
# Kinds: label-noise (rate), label-flip, sign-flip (scale), scale (factor), random-noise (std),
# free-ride, stale (noise), inflate-samples (factor), alie (z), min-max (perturbation: unit,
# sign or std), adaptive-flip (keep, share, cover: own or round, under), collude (scale; colluders
# accept each other's updates and reject everyone else's). Each may take fromRound: honest
# until that round, so the record vouches for the member before it attacks.
attacks: []
# Who drives each participant: agents (a LangGraph agent per participant, deciding through
# the protocol tools) or autopilot. llm: policy (deterministic protocol policy),
# ollama:<model> or gguf:<path>. llmTimeoutSeconds: the longest one model call may take; no
# answer by then counts as an invalid one (retried once, then the protocol policy takes the step).
# tools: plugin tool modules, e.g. [./examples/plugin-tool/index.ts].
# judgement: who decides a vote's accept: rule (the acceptance rule), model (the agent's model),
# or guarded (the model, but it cannot accept what the rule rejects); every vote records it.
# prompt: a system prompt template file (default prompts/participant.md); personas: { agent-2: … }.
# chatLimit: answers per sender in the room (each may cost a model call), at most messages per seconds,
# and others in all to everyone but the researchers.
# --verbose prints each agent step; LANGSMITH_TRACING=true with LANGSMITH_API_KEY traces every
# model and tool call to LangSmith (README, "Trace agents with LangSmith").
agent: { driver: agents, llm: policy, llmTimeoutSeconds: 300, tools: [], maxSteps: 8, judgement: rule, personas: {}, chatLimit: { messages: 6, seconds: 60, others: 30 } }
`
