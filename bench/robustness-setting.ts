/**
 * The setting bench:robustness and bench:undefended share, so that "the same federation with
 * the hostile members absent" means one thing in both: Table 1's partition, 5 members, the
 * last h of them hostile, server momentum 0.5 for classify (Table 1's schedule).
 */
import type { RunConfigInput } from '../src/federation/config.ts'
import { TABLE1_BASE } from './table1-setting.ts'

export const AGENTS = 5

/** The grid both benches take from the command line: tasks, seeds, h, attacks and their settings, split, rounds, where the rows go. */
export const GRID_OPTIONS = {
  tasks: { type: 'string', default: 'classify,ner' },
  seeds: { type: 'string', default: '1,2,3' },
  hostile: { type: 'string', default: '1,2' },
  attacks: { type: 'string', default: 'all' },
  'attack-args': { type: 'string' },
  rounds: { type: 'string', default: '3' },
  split: { type: 'string', default: 'test' },
  out: { type: 'string', default: 'docs/results' }
} as const

/** The hostile members' 1-based indices: the last h of `agents`. */
export const hostileMembers = (hostile: number, agents = AGENTS): number[] => Array.from({ length: hostile }, (_, i) => agents - i)

/** The run config both benches start from; the robustness bench adds its acceptance terms. */
export const robustnessBase = ({ task, seed, rounds, split }: { task: string, seed: number, rounds: number, split: string }): RunConfigInput =>
  ({ ...TABLE1_BASE, agents: AGENTS, rounds, seed, task: { kind: task }, evalSplit: split, momentum: task === 'classify' ? 0.5 : 0 }) as unknown as RunConfigInput

/** An attack's own settings as a command gives them (`rate=1,perturbation=std`): numbers where they read as numbers. */
export const attackArgs = (text: string | undefined): Record<string, number | string> | undefined => text === undefined
  ? undefined
  : Object.fromEntries(text.split(',').map(kv => kv.split('=')).map(([k, v]) => [k, v === undefined || v === '' || Number.isNaN(Number(v)) ? v ?? '' : Number(v)]))

/** How a row names its attack: the kind, its own settings where set, and the round it turned in where later than 1. */
export const attackLabel = (r: { attack: string, args?: Record<string, number | string>, fromRound?: number }): string =>
  `${r.attack}${r.args === undefined ? '' : ` (${Object.entries(r.args).map(([k, v]) => `${k} ${v}`).join(', ')})`}${r.fromRound === undefined ? '' : ` from round ${r.fromRound}`}`

/** What a run's or a robustness row's acceptance terms are, as a row names them (a default left out): rows measured under a config's terms match it. */
export interface MeasuredTerms {
  acceptance?: string, minGain?: number, probationGain?: number, minSharpening?: number, sharpeningYardstick?: string, minMovement?: number,
  strikes?: number, excludeRejected?: boolean, gainingVouchers?: boolean, badOnProbation?: boolean, probationOnce?: boolean
}
export const termsOf = (c: MeasuredTerms & ({ robustness: false | { maxRoundCosine?: number } } | { maxRoundCosine?: number })): string => JSON.stringify({
  acceptance: c.acceptance ?? 'tolerance',
  minGain: c.minGain,
  probationGain: c.probationGain,
  minSharpening: c.minSharpening,
  sharpeningYardstick: c.sharpeningYardstick,
  minMovement: c.minMovement,
  strikes: c.strikes === 1 ? undefined : c.strikes,
  excludeRejected: c.excludeRejected === true ? true : undefined,
  gainingVouchers: c.gainingVouchers === true ? true : undefined,
  badOnProbation: c.badOnProbation === true ? true : undefined,
  probationOnce: c.probationOnce === true ? true : undefined,
  // The one geometry bound a row names; the others are the config's defaults in every row.
  maxRoundCosine: 'robustness' in c ? (c.robustness === false ? undefined : c.robustness.maxRoundCosine) : c.maxRoundCosine
})
