import type { Ledger } from './index.ts'
export function createIotaLedger (_: unknown): Promise<Ledger> { throw new Error('todo') }
