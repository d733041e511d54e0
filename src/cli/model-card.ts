import { basename } from 'node:path'
import type { ModelRef } from '../core/records.ts'
import type { HeadReport } from '../federation/head.ts'
import type { TaskConfig } from '../ml/task.ts'
import type { RunAuditReport } from './audit-dir.ts'

export interface ModelCardFacts {
  federation: string
  task: TaskConfig
  round: number
  lastRound: number
  model: ModelRef
  head: HeadReport
  audit: RunAuditReport
  members: Array<{ name: string, did: string }>
  seed: number
  metric: { name: string, value: number, split: 'test' | 'dev' }
  labels?: readonly string[]
}

const INPUTS: Record<TaskConfig['kind'], { input: string, output: string }> = {
  classify: { input: '{"id": "d1", "text": "Acute myocardial infarction in a 54-year-old man…"}', output: '{"line": 1, "id": "d1", "label": "C14"}' },
  ner: { input: '{"id": "s1", "tokens": ["Aspirin", "induced", "gastric", "ulcers", "."]}', output: '{"line": 1, "id": "s1", "tags": ["B-Chemical", "O", "B-Disease", "I-Disease", "O"]}' },
  qa: { input: '{"id": "q1", "question": "What are the symptoms of Gaucher disease ?"}', output: '{"line": 1, "id": "q1", "answer": "…"}' }
}

/**
 * The export's README.md: which model this is (round, hash, the ledger head it comes from),
 * whether the run's audit vouched for it, who trained it, how it scored, and how to use it.
 */
export function modelCard (facts: ModelCardFacts): string {
  const { audit, head, task } = facts
  const io = INPUTS[task.kind]
  // As JSON (a line break in a label is `\n`), through a function (no `$&` patterns): it stays on its indented code line.
  const label = facts.labels?.[0]
  const output = task.kind === 'classify' && label !== undefined ? io.output.replace('"C14"', () => JSON.stringify(label)) : io.output
  // The settings are numbers, booleans and names the task schema bounds; the dataset, a local path, is named by its folder only.
  const { data, ...settings } = task
  return `# ${task.kind} model from federation ${code(facts.federation)}, round ${facts.round}

The global model ${facts.round === 0 ? 'the federation started from (its charter\'s initial model)' : `after round ${facts.round} of ${facts.lastRound}`}, taken out of a Conclave run by \`conclave export\`.

| | |
| --- | --- |
| model sha-256 | ${cell(facts.model.sha256)} (of \`model.safetensors\`, byte for byte) |
| model CID | ${cell(facts.model.cid)} |
| ledger head | ${cell(head.id)} (signed by ${head.signedBy.length} of ${facts.members.length} members; ${head.blocks} blocks) |
| audit | ok: ${audit.records} records, ${audit.proposals} proposals, ${audit.votes} votes, ${audit.decisions} decisions, ${audit.checkpoints} checkpoints; ${audit.votesReplayed ? 'every vote re-decided by the charter\'s acceptance terms' : 'votes not replayable (the charter states no acceptance terms)'}; ${audit.rejected.length} records refused by the protocol |
| final model of the run | ${cell(String(audit.modelHash))} |
| ${facts.metric.name} (${facts.metric.split} split) | ${facts.metric.value.toFixed(4)} |
| seed | ${facts.seed} |

Check the run directory it came from with \`conclave audit RUN_DIR --head ${head.id}\`: the
audit replays the ledger and re-derives every checkpoint, so a run that passes it holds this
model's hash on its ledger.

## Members

${facts.members.map(m => `- ${m.name}: ${code(m.did)}`).join('\n')}

## Task

\`task.json\` holds the task config the run used (data: ${code(basename(data))}). Settings:
${Object.entries(settings).map(([k, v]) => `\`${k}\`: ${JSON.stringify(v)}`).join(' · ')}.
${facts.labels === undefined ? '' : `\nLabels, by class id: ${facts.labels.map(l => code(l)).join(', ')}.\n`}
\`predictor.json\` holds what the model needs besides its weights (vocabulary, feature
settings, labels), materialised from the training split: nothing else is read at prediction.

## Use

    conclave predict DIR --in examples.jsonl --out predictions.jsonl

One JSON example per line, e.g.

    ${io.input}

gives one prediction per line, e.g.

    ${output}
${task.kind === 'ner' ? '\nSentences are read in order as one text: an abbreviation defined in a sentence ("atrial fibrillation ( AF )") is seen by the next ' + String(task.context) + ', as in training.\n' : ''}
In Python: \`safetensors.numpy.load_file("model.safetensors")\`; tensors \`dense{l}.kernel\`
(features × units) and \`dense{l}.bias\`${task.kind === 'ner' && task.crf ? ', and the CRF\'s `crf.start` and `crf.transitions`' : ''}.
`
}

/**
 * `value` as a Markdown code span, whatever it holds (it may come from a dataset or a run
 * directory someone else made): the fence is one backtick longer than the longest run inside
 * (CommonMark), padded where the value starts or ends with one, and a line break, which could
 * end the paragraph and start an HTML block, is a space (as a code span shows it anyway).
 */
export function code (value: string): string {
  const text = value.replace(/\r\n|\r|\n/g, ' ')
  const fence = '`'.repeat(1 + Math.max(0, ...(text.match(/`+/g) ?? []).map(run => run.length)))
  // A space each side is stripped where both are there: also pad one that starts and ends with a space.
  const pad = /^[` ]|[` ]$/.test(text) ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

/** A code span in a table cell: a `|` inside would end the cell (GFM splits cells before it reads spans). */
function cell (value: string): string {
  return code(value).replace(/\|/g, '\\|')
}
