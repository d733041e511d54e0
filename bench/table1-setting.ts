/**
 * Table 1's setting, shared by the bench that makes the table and the one that chooses the
 * vote rule on dev, so "the same setting as Table 1" holds by construction.
 */
/**
 * Rounds and server momentum per task. Classification's FedAvg was still climbing at round 5
 * (dev: 61.0 → 61.9 over the last two rounds, centralised flat from round 1), so it runs
 * 10 rounds with momentum 0.5, chosen on the dev split (docs/results/classify-schedule.md).
 */
export const TABLE1_SCHEDULE = {
  classify: { rounds: 10, momentum: 0.5 },
  ner: { rounds: 5, momentum: 0 },
  qa: { rounds: 5, momentum: 0 }
} as const

/** 5 agents, quorum 4 of 5, Dirichlet(α = 1) shares; rounds, seed, task and attacks come per run. */
export const TABLE1_BASE = { agents: 5, quorum: 4, partition: { kind: 'dirichlet', alpha: 1 } } as const

/** Clean, and with agent 5 sign-flipping its update ×5. */
export const TABLE1_SETTINGS = [
  { name: 'clean', hostile: 0, attacks: [] },
  { name: '1 of 5 hostile', hostile: 1, attacks: [{ kind: 'sign-flip', agent: 5, scale: 5 }] }
] as const

/**
 * Conclave's variant rows, beside its plain rows: a charter's compression (int8, and topk
 * with error feedback at the fraction chosen on the dev split, merged coordinate by coordinate
 * over the updates that send it, as chosen there too: docs/results/topk-selection.md),
 * and a committee (each proposal judged by 3 of the 4 peers drawn from the ledger, merged only
 * if all 3 accept, as quorum 4 of 5 asks every peer without one).
 */
export const TABLE1_VARIANTS = {
  'conclave-int8': { compression: { kind: 'int8' } },
  'conclave-topk': { compression: { kind: 'topk', fraction: 0.1 }, aggregation: 'fedavg-sparse' },
  'conclave-committee': { committee: 3, quorum: 3 }
} as const
