import type { AgentStep } from '../graphs/participant.ts'

/** Longest argument list or reply shown; a vote's rationale or a model's musings would flood the log. */
const SHOWN = 120

/**
 * One line for `--verbose` per model step: `agent-2 step 3 (proposal): vote {"proposal":…} ·
 * model 0.004 s`. The time is what the model took to decide, retries and fallback included.
 */
export function stepLine (agent: string, step: AgentStep): string {
  const what = step.calls.length === 0
    ? `reply ${clip(JSON.stringify(step.reply.replace(/\s+/g, ' ').trim()))}`
    : step.calls.map(c => `${c.name} ${clip(JSON.stringify(c.args) ?? '{}')}`).join(', ')
  const via = step.via === 'model' ? '' : step.via === 'retry' ? ', valid after a retry' : ', invalid twice: the policy decided'
  return `${agent} step ${step.step}${step.event === undefined ? '' : ` (${step.event})`}: ${what} · model ${step.seconds.toFixed(3)} s${via}`
}

function clip (text: string): string {
  return text.length <= SHOWN ? text : `${text.slice(0, SHOWN - 1)}…`
}
