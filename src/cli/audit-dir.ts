import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../core/errors.ts'
import { audit, type AuditReport } from '../federation/audit.ts'
import { openReplica, REPLICA_FILE } from '../ledger/replica.ts'
import { openTangle } from '../ledger/tangle.ts'
import { createHeliaStore, verifyStoreDir } from '../storage/helia.ts'

/**
 * Audits a run directory of the embedded engines: `DIR/ledger/` and `DIR/store/`. A member's
 * directory holds its copy of a replicated ledger (`ledger/replica.jsonl`), opened read-only;
 * a simulation's holds the tangle.
 */
export async function auditRunDir (dir: string): Promise<AuditReport> {
  for (const part of ['ledger', 'store']) {
    if (!await exists(join(dir, part))) throw new ConfigError(`${dir} is not a Conclave run directory: it has no ${part}/`)
  }
  const ledgerDir = join(dir, 'ledger')
  const ledger = await exists(join(ledgerDir, REPLICA_FILE)) ? await openReplica({ dir: ledgerDir }) : await openTangle({ dir: ledgerDir })
  const store = await createHeliaStore({ dir: join(dir, 'store') })
  try {
    return await audit(ledger, store, { verifyStore: () => verifyStoreDir(join(dir, 'store')) })
  } finally {
    await ledger.close()
    await store.close()
  }
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}
