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
  const output = task.kind === 'classify' && facts.labels?.[0] !== undefined ? io.output.replace('C14', facts.labels[0]) : io.output
  const { data, ...settings } = task
  return `# ${task.kind} model from federation ${facts.federation}, round ${facts.round}

The global model ${facts.round === 0 ? 'the federation started from (its charter\'s initial model)' : `after round ${facts.round} of ${facts.lastRound}`}, taken out of a Conclave run by \`conclave export\`.

| | |
| --- | --- |
| model sha-256 | \`${facts.model.sha256}\` (of \`model.safetensors\`, byte for byte) |
| model CID | \`${facts.model.cid}\` |
| ledger head | \`${head.id}\` (signed by ${head.signedBy.length} of ${facts.members.length} members; ${head.blocks} blocks) |
| audit | ok: ${audit.records} records, ${audit.proposals} proposals, ${audit.votes} votes, ${audit.decisions} decisions, ${audit.checkpoints} checkpoints; ${audit.votesReplayed ? 'every vote re-decided by the charter\'s acceptance terms' : 'votes not replayable (the charter states no acceptance terms)'}; ${audit.rejected.length} records refused by the protocol |
| final model of the run | \`${audit.modelHash}\` |
| ${facts.metric.name} (${facts.metric.split} split) | ${facts.metric.value.toFixed(4)} |
| seed | ${facts.seed} |

Check the run directory it came from with \`conclave audit RUN_DIR --head ${head.id}\`: the
audit replays the ledger and re-derives every checkpoint, so a run that passes it holds this
model's hash on its ledger.

## Members

${facts.members.map(m => `- ${m.name}: \`${m.did}\``).join('\n')}

## Task

\`task.json\` holds the task config the run used (data: \`${data}\`). Settings:
${Object.entries(settings).map(([k, v]) => `\`${k}\`: ${JSON.stringify(v)}`).join(' · ')}.
${facts.labels === undefined ? '' : `\nLabels, by class id: ${facts.labels.map(l => `\`${l}\``).join(', ')}.\n`}
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
