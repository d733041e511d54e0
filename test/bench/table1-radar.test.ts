import { describe, expect, it } from 'vitest'
import { radarAxes, radarSvg, type RadarRow } from '../../bench/table1-radar.ts'

const row = (task: string, setting: string, hostile: number, mean: number, wallSeconds = 10): RadarRow => ({ task, setting, hostile, metric: 'accuracy', mean, wallSeconds })

describe('Table 1 as a radar', () => {
  it('puts each method on ratio axes from measured rows, and leaves out an axis whose rows are missing', () => {
    const rows = [row('classify', 'centralized', 0, 0.8, 10), row('classify', 'fedavg', 0, 0.8, 20), row('classify', 'conclave', 0, 0.6, 40), row('classify', 'fedavg', 1, 0.2), row('classify', 'conclave', 1, 0.6)]
    const { axes, points } = radarAxes(rows)
    expect(axes.map(a => a.axis)).toEqual(['classify: quality', 'classify: 1 hostile', 'speed'])
    // Ratios of floats: compared at 12 decimals.
    expect(points.map(p => ({ ...p, value: Number(p.value.toFixed(12)) }))).toEqual([
      { axis: 'classify: quality', method: 'fedavg', value: 1 }, { axis: 'classify: quality', method: 'conclave', value: 0.75 },
      { axis: 'classify: 1 hostile', method: 'fedavg', value: 0.25 }, { axis: 'classify: 1 hostile', method: 'conclave', value: 1 },
      { axis: 'speed', method: 'fedavg', value: 0.5 }, { axis: 'speed', method: 'conclave', value: 0.25 }
    ])
  })

  it('renders to SVG offline', async () => {
    expect((await radarSvg([row('ner', 'centralized', 0, 0.8), row('ner', 'fedavg', 0, 0.7), row('ner', 'conclave', 0, 0.75)], 'test')).slice(0, 4)).toBe('<svg')
  })
})
