import type { DriverFactory } from '../src/federation/driver.ts'
import { ParticipantAgent, type AgentOptions } from './participant-agent.ts'

export { ParticipantAgent, type AgentOptions } from './participant-agent.ts'

/** Every participant of a run becomes an agent with these options. */
export function agentDriver (options: AgentOptions = {}): DriverFactory {
  return async (participant, context) => ParticipantAgent.create(participant, context, options)
}
