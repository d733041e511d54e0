/**
 * `node bench/topk-selection.ts [--fractions 0.01,0.05,0.1] [--seeds 1] [--aggregation fedavg|fedavg-sparse] [--out DIR]`: chooses
 * topk's fraction for Table 1's compression rows on the dev split only. Table 1's clean
 * classify setting (5 agents, quorum 4 of 5, Dirichlet(α = 1), 10 rounds, momentum 0.5) under
 * topk with error feedback, each fraction scored on dev, with the bytes each update takes.
 * `--aggregation` merges the topk runs by another rule (`none` stays FedAvg). Writes
 * topk-selection.{json,md}; the test split is never read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { AggregationRule } from '../src/core/records.ts'
import { parseRunConfig, type RunConfigInput } from '../src/federation/config.ts'
import { runFederation } from '../src/federation/run.ts'
import { TABLE1_BASE, TABLE1_SCHEDULE } from './table1-setting.ts'
import { meanUpdateBytes } from './update-bytes.ts'

const { values } = parseArgs({ options: { fractions: { type: 'string', default: '0.01,0.05,0.1' }, seeds: { type: 'string', default: '1' }, aggregation: { type: 'string', default: 'fedavg' }, out: { type: 'string', default: 'docs/results' } } })
const fractions = values.fractions.split(',').map(Number)
const seeds = values.seeds.split(',').map(Number)
const aggregation = AggregationRule.parse(values.aggregation)
const rows: Array<{ fraction: number | null, seed: number, aggregation: AggregationRule, devAccuracy: number, bytesPerUpdate: number, rejectionRate: number }> = []
for (const fraction of [null, ...fractions]) {
  for (const seed of seeds) {
    const compression = fraction === null ? { kind: 'none' } : { kind: 'topk', fraction }
    const config = parseRunConfig({ ...TABLE1_BASE, ...TABLE1_SCHEDULE.classify, seed, task: { kind: 'classify' }, evalSplit: 'dev', compression, aggregation: fraction === null ? 'fedavg' : aggregation } as unknown as RunConfigInput)
    const out = await mkdtemp(join(tmpdir(), 'conclave-topk-'))
    const report = await runFederation(config, { out, force: true })
    const row = { fraction, seed, aggregation: config.aggregation, devAccuracy: report.rounds.at(-1)?.metric.value as number, bytesPerUpdate: await meanUpdateBytes(out), rejectionRate: report.rejectionRate }
    await rm(out, { recursive: true, force: true })
    rows.push(row)
    process.stderr.write(`topk ${fraction ?? 'none'} · seed ${seed}: dev accuracy ${row.devAccuracy.toFixed(4)} · ${row.bytesPerUpdate.toFixed(0)} B/update · rejected ${(100 * row.rejectionRate).toFixed(1)}%\n`)
  }
}
const table = ['| fraction | aggregation | seed | dev accuracy (%) | bytes / update | rejected |', '|---:|---|---:|---:|---:|---:|',
  ...rows.map(r => `| ${r.fraction ?? 'none'} | ${r.aggregation} | ${r.seed} | ${(100 * r.devAccuracy).toFixed(2)} | ${r.bytesPerUpdate.toFixed(0)} | ${(100 * r.rejectionRate).toFixed(1)}% |`)].join('\n')
process.stdout.write(`${table}\n`)
const command = `node bench/topk-selection.ts --fractions ${values.fractions} --seeds ${values.seeds}${aggregation === 'fedavg' ? '' : ` --aggregation ${aggregation}`}`
await writeFile(join(values.out, 'topk-selection.json'), JSON.stringify({ command, split: 'dev', setting: 'Table 1 classify, clean', rows }, null, 2) + '\n')
await writeFile(join(values.out, 'topk-selection.md'), `# Choosing topk's fraction (dev split)\n\nMade by \`${command}\`: Table 1's clean classify setting (5 agents, quorum 4 of 5, Dirichlet(α = 1), ${TABLE1_SCHEDULE.classify.rounds} rounds, momentum ${TABLE1_SCHEDULE.classify.momentum}) under topk with error feedback, scored on the dev split only; \`none\` is the same run uncompressed.\n\n${table}\n`)
