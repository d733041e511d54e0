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

/** Warnings only (to stderr): what the CLI prints without --verbose, so a member that cannot do its part says why. */
export const warningLogger: Logger = {
  info () {},
  warn: consoleLogger.warn
}

function format (level: string, message: string, fields?: object): string {
  return `[${level}] ${message}${fields === undefined ? '' : ' ' + JSON.stringify(fields)}\n`
}
