import { Annotation, END, START, StateGraph } from '@langchain/langgraph'

export const ChatState = Annotation.Root({
  from: Annotation<string>(),
  body: Annotation<string>(),
  answer: Annotation<string>()
})
export type ChatStateType = typeof ChatState.State

/** What the chat graph needs from its agent: commands it can run and questions it can ground. */
export interface ChatHandlers {
  command: (name: string, args: string, from: string) => Promise<string>
  question: (text: string, from: string) => Promise<string>
}

/**
 * The chat graph: a researcher's message is a `!command` (status, tools, propose, pause,
 * resume) or a question, answered from the agent's state and the ledger.
 */
export function buildChatGraph (handlers: ChatHandlers) {
  return new StateGraph(ChatState)
    .addNode('command', async (s: ChatStateType) => {
      const [name = '', ...rest] = s.body.slice(1).trim().split(/\s+/)
      return { answer: await handlers.command(name.toLowerCase(), rest.join(' '), s.from) }
    })
    .addNode('question', async (s: ChatStateType) => ({ answer: await handlers.question(s.body, s.from) }))
    .addConditionalEdges(START, (s: ChatStateType) => s.body.startsWith('!') ? 'command' : 'question', ['command', 'question'])
    .addEdge('command', END)
    .addEdge('question', END)
    .compile()
}

/** Drops a leading `@agent-2:` style mention. */
export function stripMention (body: string): string {
  return body.replace(/^\s*@[\w.:-]+[,:]?\s*/, '').trim()
}
