/**
 * Table 1's radar (the paper's Figure 3), from measured rows only: FedAvg and Conclave on
 * each axis, every axis a ratio where 1 is the reference it names (higher is better).
 * A Vega spec (Vega-Lite has no polar lines), rendered to SVG offline.
 */
import * as vega from 'vega'

/** What the radar reads from a Table 1 row. */
export interface RadarRow { task: string, setting: string, hostile: number, metric: string, mean: number, wallSeconds: number }

export interface RadarAxis { axis: string, measures: string }

const METHODS = ['fedavg', 'conclave']
const TASKS = ['classify', 'ner', 'qa']

/** Each axis, what it measures, and each method's value on it; axes whose rows are missing are left out. */
export function radarAxes (rows: RadarRow[]): { axes: RadarAxis[], points: Array<{ axis: string, method: string, value: number }> } {
  const row = (task: string, setting: string, hostile: number): RadarRow | undefined => rows.find(r => r.task === task && r.setting === setting && r.hostile === hostile)
  const axes: RadarAxis[] = []
  const points: Array<{ axis: string, method: string, value: number }> = []
  const add = (axis: string, measures: string, value: (method: string) => number | undefined): void => {
    const values = METHODS.map(method => ({ axis, method, value: value(method) }))
    if (values.some(v => v.value === undefined || !Number.isFinite(v.value))) return
    axes.push({ axis, measures })
    points.push(...values as Array<{ axis: string, method: string, value: number }>)
  }
  for (const task of TASKS) {
    const metric = row(task, 'centralized', 0)?.metric ?? 'metric'
    add(`${task}: quality`, `${task} test ${metric}, clean, ÷ the centralised model's`, m => ratio(row(task, m, 0)?.mean, row(task, 'centralized', 0)?.mean))
  }
  for (const task of TASKS) {
    const metric = row(task, 'centralized', 0)?.metric ?? 'metric'
    add(`${task}: 1 hostile`, `${task} test ${metric} with 1 of 5 members hostile (sign flip ×5) ÷ the same method's clean run`, m => ratio(row(task, m, 1)?.mean, row(task, m, 0)?.mean))
  }
  add('speed', 'the centralised run\'s seconds ÷ the method\'s, mean over the clean tasks', m => {
    const ratios = TASKS.map(t => ratio(row(t, 'centralized', 0)?.wallSeconds, row(t, m, 0)?.wallSeconds)).filter((r): r is number => r !== undefined)
    return ratios.length === 0 ? undefined : ratios.reduce((a, b) => a + b, 0) / ratios.length
  })
  return { axes, points }
}

export async function radarSvg (rows: RadarRow[], title: string): Promise<string> {
  const { points } = radarAxes(rows)
  const top = Math.max(1, ...points.map(p => p.value))
  const spec: vega.Spec = {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: 360,
    height: 360,
    padding: { left: 150, right: 150, top: 80, bottom: 50 },
    autosize: { type: 'none', contains: 'content' },
    background: 'white',
    title: { text: title, offset: 24 },
    signals: [{ name: 'radius', update: 'width / 2' }],
    data: [
      { name: 'points', values: points },
      { name: 'axes', source: 'points', transform: [{ type: 'aggregate', groupby: ['axis'] }] },
      { name: 'rings', values: [0.25, 0.5, 0.75, 1].map(f => ({ value: f * top })) }
    ],
    scales: [
      { name: 'angular', type: 'point', range: { signal: '[-PI, PI]' }, padding: 0.5, domain: { data: 'points', field: 'axis' } },
      { name: 'radial', type: 'linear', range: { signal: '[0, radius]' }, zero: true, nice: false, domain: [0, top] },
      { name: 'colour', type: 'ordinal', domain: METHODS, range: ['#ff7f0e', '#2ca02c'] }
    ],
    legends: [{ fill: 'colour', stroke: 'colour', title: 'method', orient: 'none', legendX: { signal: '-radius - 140' }, legendY: { signal: '-radius - 40' } }],
    encode: { enter: { x: { signal: 'radius' }, y: { signal: 'radius' } } },
    marks: [
      {
        type: 'rule', from: { data: 'axes' },
        encode: { enter: { x: { value: 0 }, y: { value: 0 }, x2: { signal: "radius * cos(scale('angular', datum.axis))" }, y2: { signal: "radius * sin(scale('angular', datum.axis))" }, stroke: { value: '#ccc' } } }
      },
      {
        type: 'symbol', from: { data: 'rings' },
        encode: { enter: { x: { value: 0 }, y: { value: 0 }, shape: { value: 'circle' }, size: { signal: "pow(2 * scale('radial', datum.value), 2)" }, stroke: { value: '#e3e3e3' }, fill: { value: 'transparent' } } }
      },
      {
        type: 'text', from: { data: 'rings' },
        encode: { enter: { x: { value: 2 }, y: { signal: "-scale('radial', datum.value)" }, text: { signal: "format(datum.value, '.2f')" }, fontSize: { value: 9 }, fill: { value: '#999' } } }
      },
      {
        type: 'group',
        from: { facet: { data: 'points', name: 'method', groupby: ['method'] } },
        marks: [
          {
            type: 'line', name: 'outline', from: { data: 'method' },
            encode: {
              enter: {
                interpolate: { value: 'linear-closed' },
                x: { signal: "scale('radial', datum.value) * cos(scale('angular', datum.axis))" },
                y: { signal: "scale('radial', datum.value) * sin(scale('angular', datum.axis))" },
                stroke: { scale: 'colour', field: 'method' },
                strokeWidth: { value: 2 },
                fill: { scale: 'colour', field: 'method' },
                fillOpacity: { value: 0.1 }
              }
            }
          },
          {
            type: 'text', from: { data: 'outline' },
            encode: { enter: { x: { signal: 'datum.x' }, y: { signal: 'datum.y - 7' }, text: { signal: "format(datum.datum.value, '.2f')" }, align: { value: 'center' }, fontSize: { value: 9 }, fill: { scale: 'colour', field: 'datum.method' } } }
          }
        ]
      },
      {
        type: 'text', from: { data: 'axes' },
        encode: {
          enter: {
            x: { signal: "(radius + 8) * cos(scale('angular', datum.axis))" },
            y: { signal: "(radius + 8) * sin(scale('angular', datum.axis))" },
            text: { field: 'axis' },
            align: [{ test: "abs(scale('angular', datum.axis)) > PI / 2 + 0.01", value: 'right' }, { test: "abs(scale('angular', datum.axis)) < PI / 2 - 0.01", value: 'left' }, { value: 'center' }],
            baseline: [{ test: "scale('angular', datum.axis) > 0.01", value: 'top' }, { test: "scale('angular', datum.axis) < -0.01", value: 'bottom' }, { value: 'middle' }],
            fontWeight: { value: 'bold' },
            fontSize: { value: 11 }
          }
        }
      }
    ]
  }
  const view = new vega.View(vega.parse(spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

function ratio (value: number | undefined, reference: number | undefined): number | undefined {
  return value === undefined || reference === undefined || reference === 0 ? undefined : value / reference
}
