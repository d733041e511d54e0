/**
 * Table 1's setting, shared by the bench that makes the table and the one that chooses the
 * vote rule on dev, so "the same setting as Table 1" holds by construction.
 */
export const TABLE1_ROUNDS = 5

/** 5 agents, quorum 4 of 5, Dirichlet(α = 1) shares; rounds, seed, task and attacks come per run. */
export const TABLE1_BASE = { agents: 5, quorum: 4, partition: { kind: 'dirichlet', alpha: 1 } } as const

/** Clean, and with agent 5 sign-flipping its update ×5. */
export const TABLE1_SETTINGS = [
  { name: 'clean', hostile: 0, attacks: [] },
  { name: '1 of 5 hostile', hostile: 1, attacks: [{ kind: 'sign-flip', agent: 5, scale: 5 }] }
] as const
