/** The injected logger: no global static logger anywhere in Conclave. */
export interface Logger {
  info(message: string, fields?: object): void
  warn(message: string, fields?: object): void
}

export const silentLogger: Logger = {
  info () {},
  warn () {}
}

/** Writes one line per event to stderr, so stdout stays free for tables and JSON. */
export const consoleLogger: Logger = {
  info (message, fields) { process.stderr.write(format('info', message, fields)) },
  warn (message, fields) { process.stderr.write(format('warn', message, fields)) }
}

function format (level: string, message: string, fields?: object): string {
  return `[${level}] ${message}${fields === undefined ? '' : ' ' + JSON.stringify(fields)}\n`
}
