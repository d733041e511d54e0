import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { chartSvg, learningCurve, reputationOverRounds, runCharts, teacherSpend, voteHeatmap } from '../../src/federation/charts.ts'
import { readRunView, type RunView } from '../../src/federation/run-view.ts'
import { LedgerWriter, oneRound } from '../dashboard/ledger-writer.ts'
import { tempDir } from './helpers.ts'

/** The rows a chart plots (its own data, or its layers'). */
function values (spec: object): unknown[] {
  const s = spec as { data?: { values: unknown[] }, layer?: object[], vconcat?: object[] }
  return [...(s.data?.values ?? []), ...(s.layer ?? []).flatMap(values), ...(s.vconcat ?? []).flatMap(values)]
}

describe('the charts that explain a run, from its ledger', () => {
  let view: RunView
  beforeAll(async () => {
    const dir = await tempDir('conclave-charts-')
    const writer = await LedgerWriter.create(join(dir, 'ledger'))
    await oneRound(writer)
    await writer.close()
    view = await readRunView(join(dir, 'ledger'))
  })

  it('the vote heatmap has one cell per vote: voter, proposal (marked with its decision), the vote and its measured change', () => {
    expect(values(voteHeatmap(view).spec).map(c => { const { rationale: _r, decidedBy: _d, ...cell } = c as Record<string, unknown>; return cell })).toEqual([
      { proposal: 'r1 agent-1 ✓', voter: 'agent-2', vote: 'accept', score: 0.1 },
      { proposal: 'r1 agent-1 ✓', voter: 'agent-3', vote: 'accept', score: 0.1 },
      { proposal: 'r1 agent-2 ✓', voter: 'agent-1', vote: 'accept', score: 0.1 },
      { proposal: 'r1 agent-2 ✓', voter: 'agent-3', vote: 'accept', score: 0.1 },
      { proposal: 'r1 agent-3 ✗', voter: 'agent-1', vote: 'reject', score: -0.1 },
      { proposal: 'r1 agent-3 ✗', voter: 'agent-2', vote: 'reject', score: -0.1 }
    ])
  })

  it('the learning curve marks the rejected update, and with a report the round that rejected it', () => {
    expect(values(learningCurve(view).spec)).toEqual([
      { round: 1, proposer: 'agent-1', change: 0.1, decision: 'accepted', loss: 0.5 },
      { round: 1, proposer: 'agent-2', change: 0.1, decision: 'accepted', loss: 0.5 },
      { round: 1, proposer: 'agent-3', change: -0.1, decision: 'rejected', loss: 0.5 }
    ])
    const report = { seed: 1, rounds: [{ round: 0, metric: { name: 'accuracy', value: 0.2 } }, { round: 1, metric: { name: 'accuracy', value: 0.5 } }] }
    const curve = values(learningCurve(view, report as never).spec).filter(v => 'value' in (v as object))
    expect(curve).toEqual([{ round: 0, value: 0.2, rejected: 0 }, { round: 1, value: 0.5, rejected: 1 }])
  })

  it('reputation over rounds: each member\'s accepted minus rejected proposals after each round', () => {
    expect(values(reputationOverRounds(view).spec).map(r => { const { round, member, net } = r as Record<string, unknown>; return [round, member, net] })).toEqual([
      [1, 'agent-1', 1], [1, 'agent-2', 1], [1, 'agent-3', -1]
    ])
  })

  it('teacher spend: what each member paid its teacher, only when the report names one', () => {
    const teacher = { asked: 12, cached: 3, tokens: 900, undistilled: 1 }
    const report = { agents: [{ name: 'agent-1', teacher }, { name: 'agent-2', teacher: { ...teacher, tokens: 400 } }] }
    expect(values((teacherSpend(report as never)?.spec) as object)).toEqual([{ agent: 'agent-1', ...teacher }, { agent: 'agent-2', ...teacher, tokens: 400 }])
    expect(teacherSpend({ agents: [{ name: 'agent-1' }] } as never)).toBeUndefined()
    expect(runCharts(view, report as never).map(c => c.id)).toEqual(['timeline', 'learning', 'votes', 'reputation', 'dag', 'teacher'])
  })

  it('every chart renders to SVG offline with Vega', async () => {
    for (const chart of runCharts(view)) expect((await chartSvg(chart)).slice(0, 4)).toBe('<svg')
  })
})
