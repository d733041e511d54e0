import type { TopLevelSpec } from 'vega-lite'
import { Record } from '../core/records.ts'
import type { RunReport } from './report.ts'
import type { RunView } from './run-view.ts'

/**
 * The charts that explain a run, as Vega-Lite specs: the dashboard draws them in the
 * browser (vega-embed), the report renders the same specs to SVG offline (`chartSvg`).
 * Each takes what the ledger shows (RunView) and, once the run has finished, its report.
 */
export interface Chart {
  id: ChartId
  title: string
  spec: TopLevelSpec
}
export type ChartId = 'timeline' | 'learning' | 'votes' | 'reputation' | 'dag' | 'teacher'

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json'
const WIDTH = 500
/** Every record type, in protocol order, from the schema: a scale that left one out drew its blocks at NaN (a researcher's 👍 did). */
const RECORD_TYPES = Record.options.map(o => o.shape.type.value)
const VOTE_COLOURS = { domain: ['accept', 'reject'], range: ['#1a9850', '#d73027'] }
const DECISION_COLOURS = { domain: ['accepted', 'rejected', 'undecided'], range: ['#1a9850', '#d73027', '#999999'] }
const DECISION_SHAPES = { domain: ['accepted', 'rejected', 'undecided'], range: ['circle', 'cross', 'triangle-up'] }

/** Every chart the run's records support now (the teacher's only once the report names a teacher). */
export function runCharts (view: RunView, report?: RunReport): Chart[] {
  const charts = [roundTimeline(view), learningCurve(view, report), voteHeatmap(view), reputationOverRounds(view), ledgerDag(view)]
  const teacher = teacherSpend(report)
  return teacher === undefined ? charts : [...charts, teacher]
}

/** Each round from its opening to its checkpoint, with every record anchored in it, in seconds since the charter. */
export function roundTimeline (view: RunView): Chart {
  const start = view.blocks[0]?.time ?? 0
  const end = view.blocks.at(-1)?.time ?? start
  const spans = view.rounds.map(r => ({ round: `round ${r.round}`, from: r.openedAt - start, to: (r.closedAt ?? end) - start, state: r.closedAt === null ? 'open' : `${r.accepted} of ${r.proposals.length} accepted` }))
  const records = view.blocks.filter(b => b.round > 0).map(b => ({ round: `round ${b.round}`, at: b.time - start, type: b.type, seq: b.seq }))
  return {
    id: 'timeline',
    title: 'Round timeline',
    spec: {
      $schema: SCHEMA,
      width: WIDTH,
      height: { step: 28 },
      layer: [
        { data: { values: spans }, mark: { type: 'bar', opacity: 0.25, color: '#4c78a8' }, encoding: { y: { field: 'round', type: 'nominal', title: null }, x: { field: 'from', type: 'quantitative', title: 'seconds since the charter' }, x2: { field: 'to' }, tooltip: [{ field: 'round' }, { field: 'state' }] } },
        { data: { values: records }, mark: { type: 'tick', thickness: 2 }, encoding: { y: { field: 'round', type: 'nominal' }, x: { field: 'at', type: 'quantitative' }, color: { field: 'type', type: 'nominal', scale: { domain: RECORD_TYPES }, title: 'record' }, tooltip: [{ field: 'type' }, { field: 'seq', title: 'block' }, { field: 'at', title: 's' }] } }
      ]
    }
  }
}

/**
 * Above: the global model's metric on the test split per round (from the report, once the
 * run has finished). Below: every update, as the mean change its voters measured on their
 * own validation data, marked by the quorum's decision (a rejected update is a red cross).
 */
export function learningCurve (view: RunView, report?: RunReport): Chart {
  const updates = view.proposals.map(p => {
    const votes = view.votes.filter(v => v.proposal === p.block)
    const change = votes.length === 0 ? null : votes.reduce((s, v) => s + v.score, 0) / votes.length
    return { round: p.round, proposer: p.proposer.name, change, decision: p.decision === null ? 'undecided' : p.decision.accepted ? 'accepted' : 'rejected', loss: p.metric?.value ?? null }
  }).filter(u => u.change !== null)
  const below: TopLevelSpec = {
    width: WIDTH,
    height: 160,
    data: { values: updates },
    title: 'Each update: mean change its voters measured',
    layer: [
      { mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { datum: 0, type: 'quantitative' } } },
      {
        mark: { type: 'point', size: 90, filled: true, opacity: 0.9 },
        encoding: {
          x: { field: 'round', type: 'ordinal', title: 'round', axis: { labelAngle: 0 } },
          xOffset: { field: 'proposer', type: 'nominal' },
          y: { field: 'change', type: 'quantitative', title: 'change in the voters\' metric' },
          color: { field: 'decision', type: 'nominal', scale: DECISION_COLOURS, title: 'decision' },
          shape: { field: 'decision', type: 'nominal', scale: DECISION_SHAPES },
          tooltip: [{ field: 'proposer' }, { field: 'round' }, { field: 'decision' }, { field: 'change', format: '+.4f' }, { field: 'loss', title: 'training loss', format: '.4f' }]
        }
      }
    ]
  } as TopLevelSpec
  const rounds = report?.rounds ?? []
  if (rounds.length === 0) return { id: 'learning', title: 'Learning curve', spec: { $schema: SCHEMA, ...below } as TopLevelSpec }
  const metric = rounds[0]?.metric.name ?? 'metric'
  const rejected = new Map<number, number>()
  for (const p of view.proposals) if (p.decision?.accepted === false) rejected.set(p.round, (rejected.get(p.round) ?? 0) + 1)
  const curve = rounds.map(r => ({ round: r.round, value: r.metric.value, rejected: rejected.get(r.round) ?? 0 }))
  const above = {
    width: WIDTH,
    height: 180,
    data: { values: curve },
    title: `Global model ${metric} on the test split (seed ${report?.seed})`,
    encoding: { x: { field: 'round', type: 'ordinal', title: 'round', axis: { labelAngle: 0 } }, y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false } } },
    layer: [
      { mark: { type: 'line', point: true, color: '#4c78a8' }, encoding: { tooltip: [{ field: 'round' }, { field: 'value', format: '.4f' }, { field: 'rejected', title: 'updates rejected' }] } },
      { transform: [{ filter: 'datum.rejected > 0' }], mark: { type: 'point', shape: 'cross', size: 160, color: '#d73027', filled: true }, encoding: { tooltip: [{ field: 'rejected', title: 'updates rejected' }] } },
      { transform: [{ filter: 'datum.rejected > 0' }], mark: { type: 'text', dy: -14, color: '#d73027' }, encoding: { text: { field: 'rejected', type: 'quantitative', format: 'd' } } }
    ]
  }
  return { id: 'learning', title: 'Learning curve', spec: { $schema: SCHEMA, vconcat: [above, below] } as TopLevelSpec }
}

/** Voter × proposal: each cell the vote, labelled with the change the voter measured. */
export function voteHeatmap (view: RunView): Chart {
  const label = new Map(view.proposals.map(p => [p.block, `r${p.round} ${p.proposer.name}${p.decision === null ? '' : p.decision.accepted ? ' ✓' : ' ✗'}`]))
  const order = view.proposals.map(p => label.get(p.block) as string)
  const cells = view.votes.map(v => ({ proposal: label.get(v.proposal) ?? v.proposal, voter: v.voter.name, vote: v.accept ? 'accept' : 'reject', score: v.score, rationale: v.rationale, decidedBy: v.decidedBy ?? '' }))
  return {
    id: 'votes',
    title: 'Votes: voter × proposal',
    spec: {
      $schema: SCHEMA,
      data: { values: cells },
      width: { step: 64 },
      height: { step: 26 },
      encoding: {
        x: { field: 'proposal', type: 'nominal', sort: order, title: 'proposal (round, proposer, decision)', axis: { labelAngle: -40 } },
        y: { field: 'voter', type: 'nominal', sort: view.members.map(m => m.name), title: 'voter' }
      },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'vote', type: 'nominal', scale: VOTE_COLOURS, title: 'vote' }, tooltip: [{ field: 'voter' }, { field: 'proposal' }, { field: 'vote' }, { field: 'score', format: '+.4f' }, { field: 'rationale' }, { field: 'decidedBy', title: 'decided by' }] } },
        { mark: { type: 'text', fontSize: 10, color: 'white' }, encoding: { text: { field: 'score', type: 'quantitative', format: '+.3f' } } }
      ]
    }
  }
}

/**
 * Each member's standing after each round: its proposals accepted minus rejected,
 * cumulative. Bars side by side, so members with the same record stay visible.
 */
export function reputationOverRounds (view: RunView): Chart {
  // Round 0 (the charter) is everyone at zero: no bars to draw.
  const rows = view.reputation.filter(r => r.round > 0).map(r => ({ round: r.round, member: r.member.name, net: r.accepted - r.rejected, accepted: r.accepted, rejected: r.rejected, votes: r.votes }))
  const members = view.members.map(m => m.name)
  return {
    id: 'reputation',
    title: 'Reputation over rounds',
    spec: {
      $schema: SCHEMA,
      width: WIDTH,
      height: 200,
      data: { values: rows },
      mark: 'bar',
      encoding: {
        x: { field: 'round', type: 'ordinal', title: 'after round', axis: { labelAngle: 0 } },
        xOffset: { field: 'member', type: 'nominal', sort: members },
        y: { field: 'net', type: 'quantitative', axis: { tickMinStep: 1 }, title: 'proposals accepted − rejected' },
        color: { field: 'member', type: 'nominal', sort: members, title: 'member' },
        tooltip: [{ field: 'member' }, { field: 'round' }, { field: 'accepted' }, { field: 'rejected' }, { field: 'votes', title: 'votes cast' }]
      }
    }
  }
}

/** The ledger's DAG: one point per block in ledger order, one lane per record type, a line to each parent it approves. */
export function ledgerDag (view: RunView): Chart {
  const byId = new Map(view.blocks.map(b => [b.id, b]))
  const nodes = view.blocks.map(b => ({ seq: b.seq, type: b.type, round: b.round, block: b.id.slice(0, 12), signer: view.members.find(m => m.did === b.issuer)?.name ?? b.issuer }))
  const edges = view.blocks.flatMap(b => b.parents.flatMap(p => {
    const parent = byId.get(p)
    return parent === undefined ? [] : [{ seq: b.seq, type: b.type, parentSeq: parent.seq, parentType: parent.type }]
  }))
  return {
    id: 'dag',
    title: 'Ledger DAG',
    spec: {
      $schema: SCHEMA,
      width: Math.max(WIDTH, 10 * nodes.length),
      height: 160,
      layer: [
        { data: { values: edges }, mark: { type: 'rule', color: '#bbb' }, encoding: { x: { field: 'parentSeq', type: 'quantitative' }, x2: { field: 'seq' }, y: { field: 'parentType', type: 'nominal' }, y2: { field: 'type' } } },
        {
          data: { values: nodes },
          mark: { type: 'point', filled: true, size: 60 },
          encoding: {
            x: { field: 'seq', type: 'quantitative', title: 'block (ledger order)' },
            y: { field: 'type', type: 'nominal', sort: RECORD_TYPES, scale: { domain: RECORD_TYPES }, title: null },
            color: { field: 'type', type: 'nominal', scale: { domain: RECORD_TYPES }, legend: null },
            tooltip: [{ field: 'seq', title: 'block' }, { field: 'block', title: 'id' }, { field: 'type' }, { field: 'round' }, { field: 'signer' }]
          }
        }
      ]
    }
  }
}

/** What each member paid its teacher: tokens, answers asked and served from the cache (tasks learned by distillation only). */
export function teacherSpend (report?: RunReport): Chart | undefined {
  const rows = (report?.agents ?? []).flatMap(a => a.teacher === undefined ? [] : [{ agent: a.name, ...a.teacher }])
  if (rows.length === 0) return undefined
  return {
    id: 'teacher',
    title: 'Teacher spend',
    spec: {
      $schema: SCHEMA,
      width: WIDTH,
      height: 160,
      data: { values: rows },
      mark: 'bar',
      encoding: {
        x: { field: 'agent', type: 'nominal', title: null },
        y: { field: 'tokens', type: 'quantitative', title: 'teacher tokens paid' },
        tooltip: [{ field: 'agent' }, { field: 'tokens' }, { field: 'asked', title: 'answers paid for' }, { field: 'cached', title: 'answers from the cache' }, { field: 'undistilled', title: 'left unanswered' }]
      }
    }
  }
}

/** A chart rendered to a self-contained SVG offline (white background, its title on top). */
export async function chartSvg (chart: Chart): Promise<string> {
  return await vegaLiteSvg({ ...chart.spec, title: chart.title, background: 'white' } as TopLevelSpec)
}

/** Any Vega-Lite spec rendered to SVG offline, with Vega's headless view (no browser, no canvas). */
export async function vegaLiteSvg (spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')])
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}
