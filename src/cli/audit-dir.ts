import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../core/errors.ts'
import { audit, type AuditReport } from '../federation/audit.ts'
import { openTangle } from '../ledger/tangle.ts'
import { createHeliaStore, verifyStoreDir } from '../storage/helia.ts'

/** Audits a run directory of the embedded engines: `DIR/ledger/` and `DIR/store/`. */
export async function auditRunDir (dir: string): Promise<AuditReport> {
  for (const part of ['ledger', 'store']) {
    const found = await access(join(dir, part)).then(() => true, () => false)
    if (!found) throw new ConfigError(`${dir} is not a Conclave run directory: it has no ${part}/`)
  }
  const ledger = await openTangle({ dir: join(dir, 'ledger') })
  const store = await createHeliaStore({ dir: join(dir, 'store') })
  try {
    return await audit(ledger, store, { verifyStore: () => verifyStoreDir(join(dir, 'store')) })
  } finally {
    await ledger.close()
    await store.close()
  }
}
