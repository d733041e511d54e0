/**
 * `node bench/audit-dir.ts DIR`: audits a run directory as `conclave audit DIR` does, in a
 * process that has verified nothing yet, and prints what it took as one JSON line (for
 * bench/run.ts). CPU seconds are the process's, so other load on the machine shows only in the wall time.
 */
import { auditRunDir } from '../src/cli/audit-dir.ts'

const dir = process.argv[2]
if (dir === undefined) throw new Error('usage: node bench/audit-dir.ts DIR')
const cpu = process.cpuUsage()
const start = performance.now()
const report = await auditRunDir(dir)
const seconds = (performance.now() - start) / 1000
const used = process.cpuUsage(cpu)
process.stdout.write(JSON.stringify({ ok: report.ok, records: report.records, modelHash: report.modelHash, seconds, cpuSeconds: (used.user + used.system) / 1e6 }) + '\n')
