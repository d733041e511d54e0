import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ConfigError } from '../core/errors.ts'
import { DashboardPort, startDashboard, type Dashboard } from '../dashboard/server.ts'
import { parseFlags } from './flags.ts'

/** `conclave dashboard DIR [--port P]`: serves DIR's run on 127.0.0.1 until Ctrl-C. */
export async function dashboardCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args, options: { port: { type: 'string' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 1) throw new ConfigError('usage: conclave dashboard DIR [--port P]')
  const dashboard = await startDashboard({ dir: resolve(positionals[0] as string), port: portOf(values.port) })
  process.stderr.write(`dashboard: ${dashboard.url} (read-only; Ctrl-C to stop)\n`)
  await untilStopped()
  await dashboard.close()
  return 0
}

/** `conclave run --dashboard`: the run directory's dashboard, up before the run starts (the directory made empty if new). */
export async function dashboardForRun (out: string, port: string | undefined): Promise<Dashboard> {
  await mkdir(out, { recursive: true })
  const dashboard = await startDashboard({ dir: out, port: portOf(port) })
  process.stderr.write(`dashboard: ${dashboard.url}\n`)
  return dashboard
}

/** Resolves on the first Ctrl-C or SIGTERM. */
export async function untilStopped (): Promise<void> {
  await new Promise<void>(resolve => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

function portOf (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const port = DashboardPort.safeParse(value)
  if (!port.success) throw new ConfigError(`--port must be a TCP port (0–65535), not "${value}"`)
  return port.data
}
