import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { ConclaveError, ConfigError } from '../core/errors.ts'
import { mentions } from '../federation/mentions.ts'
import { ObservedRun } from '../federation/observer.ts'
import type { Participant } from '../federation/participant.ts'
import type { TeacherUse } from '../federation/steps/distill.ts'
import type { AgentChat as AgentChatType } from '../../agents/agent-chat.ts'
import { parseFlags } from './flags.ts'

export interface ChatIo {
  input: NodeJS.ReadableStream
  output: NodeJS.WritableStream
  /** Line editing, history and prompts (a person at a terminal). @default whether output is a TTY */
  terminal?: boolean
}

const USAGE = 'usage: conclave chat DIR [--agent NAME] [--llm policy|ollama:M|gguf:PATH]'

const HELP = `Ask the agent a question, in your own words: why it voted on a proposal ("why did you reject
agent-3's round 1 update?", or give a proposal id), how accuracy is trending, who has the best
reputation, what round 2 merged, which tools it has, the run's status, its teacher spend.
  @agent-N …     ask another agent just this once
  !status        the agent's status; !tools its tools
  /agent NAME    talk to another agent from now on
  /help          this help
  /quit          leave (Ctrl-D too)
The run is read-only here: nothing is written into its directory.`

/**
 * `conclave chat DIR`: talk in the terminal to the agents of a run, finished or still
 * going, loaded read-only from its directory (src/federation/observer.ts). Every answer
 * comes after the agent caught up with the ledger as it stands on disk.
 */
export async function chatCommand (args: string[], io: ChatIo): Promise<number> {
  const { values, positionals } = parseFlags({ args, options: { agent: { type: 'string' }, llm: { type: 'string' } }, allowPositionals: true, strict: true })
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new ConfigError(USAGE)
  const run = await ObservedRun.open(resolve(dir))
  try {
    const { AgentChat, strangersIn, strangersReply } = await import('../../agents/agent-chat.ts')
    const { createChatModel, ProtocolPolicyChatModel } = await import('../llm/index.ts')
    const { PROTOCOL_TOOLS } = await import('../../tools/index.ts')
    // The chat policy unless a model is asked for: the run's own model may be far away or slow.
    const spec = values.llm ?? 'policy'
    const model = spec === 'policy' ? undefined : await createChatModel(spec, { seed: run.config.seed })
    let current = values.agent ?? run.names[0] as string
    if (!run.names.includes(current)) throw new ConfigError(`there is no ${current} in this run; its members are ${run.names.join(', ')}`)

    const chats = new Map<string, { participant: Participant, chat: AgentChatType }>()
    /** Agent `name`'s chat over its member as the ledger stands now (a member reloaded after the ledger grew gets a new one). */
    const chatWith = async (name: string): Promise<AgentChatType> => {
      const participant = await run.member(name)
      const known = chats.get(name)
      if (known?.participant === participant) return known.chat
      const done = run.report?.agents.find(a => a.name === name)
      const chat = await AgentChat.create({
        participant: done?.teacher === undefined || participant.teacherUse !== undefined ? participant : withReportedTeacher(participant, done.teacher, run.config.teacher.budgetTokens),
        ledger: run.ledger,
        nameOf: did => run.nameOf(did),
        plannedRounds: run.config.rounds,
        sync: () => participant.catchUp(),
        activity: () => ({ tools: [...new Set([...PROTOCOL_TOOLS.map(t => t.name), ...Object.keys(done?.toolCalls ?? {})])], toolCalls: done?.toolCalls ?? {}, llm: done?.llm })
      }, { model: model instanceof ProtocolPolicyChatModel ? undefined : model, llmTimeoutMs: run.config.agent.llmTimeoutSeconds * 1000 })
      chats.set(name, { participant, chat })
      return chat
    }

    const terminal = io.terminal ?? (io.output as { isTTY?: boolean }).isTTY === true
    const rl = createInterface({ input: io.input, output: io.output, terminal, historySize: 500, prompt: `${current}> ` })
    const say = (text: string): void => { io.output.write(`${text}\n`) }
    say(`Talking to the agents of ${dir} (${run.names.join(', ')}; read-only${run.report === undefined ? ', no report.json: the run may still be going' : ''}). /help for help.`)
    if (terminal) rl.prompt()
    for await (const raw of rl) {
      const line = raw.trim()
      if (line === '/quit' || line === '/exit') break
      if (line === '/help') say(HELP)
      else if (line.startsWith('/agent')) {
        const name = line.slice('/agent'.length).trim()
        if (run.names.includes(name)) {
          current = name
          rl.setPrompt(`${current}> `)
          say(`Now talking to ${current}.`)
        } else say(`There is no ${name === '' ? 'agent by that name' : name}; the members are ${run.names.join(', ')}.`)
      } else if (line.startsWith('/')) say(`Unknown command ${line.split(/\s+/)[0]}; /help lists them.`)
      else if (line !== '') {
        const named = mentions(line)
        const strangers = strangersIn(named, run.names)
        const addressed = named.find(n => run.names.includes(n)) ?? current
        try {
          say(strangers.length > 0 ? strangersReply(strangers, run.names) : `${addressed}: ${await (await chatWith(addressed)).answer(line)}`)
        } catch (err) {
          if (!(err instanceof ConclaveError)) throw err
          say(`${addressed} could not answer: ${err.name}: ${err.message}`)
        }
      }
      if (terminal) rl.prompt()
    }
    rl.close()
    return 0
  } finally {
    await run.close()
  }
}

/**
 * A finished run's member with its teacher's spend as the run reported it: a member loaded
 * read-only has no teacher of its own (nothing may be asked or paid for), and would answer
 * that it never had one. `budget`: the run's per-member cap (undefined: none).
 */
function withReportedTeacher (participant: Participant, spent: TeacherUse, budget: number | undefined): Participant {
  return new Proxy(participant, {
    get (target, key) {
      if (key === 'teacherUse') return spent
      if (key === 'teacherBudget') return budget === undefined ? Number.POSITIVE_INFINITY : Math.max(0, budget - spent.tokens)
      const value: unknown = Reflect.get(target, key, target)
      // Its methods run on the member itself, whose private state a proxy cannot reach.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    }
  })
}
