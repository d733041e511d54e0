import { z } from 'zod'
import { roundFact } from '../src/federation/inquiry.ts'
import type { FederationState } from '../src/federation/state.ts'
import { defineTool, type ToolDefinition } from './define.ts'

const schemaOf = (rounds?: [number, ...number[]]) => z.object({
  round: (rounds === undefined ? z.number().int().positive() : z.literal(rounds)).nullish().describe('The round; null for the last merged one.')
})

const roundResult = defineTool({
  name: 'round_result',
  description: "What a round merged into the global model (its anchored checkpoint), what it rejected, and what is still undecided.",
  schema: schemaOf(),
  run: async ({ round }, { participant, nameOf }) => roundFact(participant.state, nameOf, round ?? Math.max(1, participant.state.global?.round ?? 1))
})
export default roundResult

/** round_result whose round can only be one the record holds now. */
export function roundResultNow (state: Pick<FederationState, 'rounds'>): ToolDefinition {
  const rounds = [...state.rounds.keys()].sort((a, b) => a - b)
  return rounds.length === 0 ? roundResult as ToolDefinition : { ...roundResult, schema: schemaOf(rounds as [number, ...number[]]) } as ToolDefinition
}
