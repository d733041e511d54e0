/**
 * Who a chat message addresses. A name is `@agent-2`; a Matrix id (`@alice:lab.org`,
 * `@agent-2:localhost:8008`) names its localpart. The lobby and a federation's agents read
 * messages by these two functions alone, so a message means the same to both.
 */
// The server part of a Matrix id is a dotted host or localhost, with any port (`@agent-2:why` is a name and a question).
const NAME = '@([A-Za-z][\\w-]*)(?::(?:localhost|[\\w-]+(?:\\.[\\w-]+)+)(?::\\d+)?)?'
// Not inside a word: `a@b.org` mentions no one.
const ANYWHERE = new RegExp(`(?<![\\w.@-])${NAME}`, 'g')
/** A mention at the start, with what separates it from the rest (`@agent-2`, `@agent-2:`, `@agent-2,`). */
const LEADING = new RegExp(`^\\s*${NAME}[,:]?\\s*`)

/** Names mentioned anywhere in the message. */
export function mentions (body: string): string[] {
  return [...body.matchAll(ANYWHERE)].map(m => m[1] as string)
}

/** The mentions the message starts with, every one (`@agent-2 @agent-3: !status` addresses both), and the text after them. */
export function leadingMentions (body: string): { names: string[], text: string } {
  const names: string[] = []
  let text = body
  for (let m = LEADING.exec(text); m !== null; m = LEADING.exec(text)) {
    names.push(m[1] as string)
    text = text.slice(m[0].length)
  }
  return { names, text: text.trim() }
}
