import { stat } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { runCharts } from '../federation/charts.ts'
import type { Applied } from '../federation/run-view.ts'
import { asset, isAsset, type AssetName } from './assets.ts'
import { EventStreams } from './event-streams.ts'
import { LiveRun } from './live.ts'

/** The dashboard only ever listens on loopback: it shows a run to the person at this machine. */
export const DASHBOARD_HOST = '127.0.0.1'

/** `--port`: a TCP port, 0 for any free one. */
export const DashboardPort = z.coerce.number().int().min(0).max(65_535)

export interface DashboardOptions {
  /** The run directory to show; read only, never written. */
  dir: string
  /** @default 8787 */
  port?: number
  /** How often the ledger file is looked at, in ms (LiveRunOptions). @default 1000 */
  intervalMs?: number
  logger?: Logger
}

export interface Dashboard {
  url: string
  port: number
  close(): Promise<void>
}

/** Query parameters each route takes: none, except where the event stream starts. */
const NoQuery = z.object({}).strict()
const EventsQuery = z.object({
  /** Send the records from this block on (the `seq` that /api/state returned), then each new one. @default the next new record */
  since: z.string().regex(/^\d{1,9}$/, 'expected a block number').transform(Number).optional()
}).strict()
const LastEventId = z.string().regex(/^\d{1,9}$/).transform(s => Number(s) + 1)

/** Live pages open at once, at most: each holds a connection and gets every record (found red-teaming: 300 idle ones were all held). */
export const MAX_STREAMS = 32

/**
 * `conclave dashboard DIR`: a read-only page on 127.0.0.1 that follows a run as its records
 * land. `GET /` the page, `GET /api/state` the RunView (with `seq`, the blocks read, and the
 * report once written), `GET /api/charts` its Vega-Lite specs, `GET /events` one
 * server-sent event per new record. Anything else is 404; a Host header that is not this
 * loopback address is refused (a web page cannot reach the dashboard by DNS rebinding), and so
 * is a request another site's page makes from the researcher's browser (403).
 */
export async function startDashboard (options: DashboardOptions): Promise<Dashboard> {
  const isDir = await stat(options.dir).then(s => s.isDirectory(), () => false)
  if (!isDir) throw new ConfigError(`${options.dir} is not a directory: give the run directory (conclave run --out)`)
  const live = await LiveRun.open(options.dir, { intervalMs: options.intervalMs, logger: options.logger })
  const streams = new EventStreams()
  let port = 0
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.logger?.warn('dashboard: request failed', { url: req.url, error: (err as Error).message })
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error')
      else res.end()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${DASHBOARD_HOST}`)
    if (!allowedHost(req.headers.host, port)) return send(res, 421, 'text/plain', 'this dashboard answers only to 127.0.0.1 and localhost')
    if (fromAnotherSite(req.headers, port) && !openingThePage(req.headers, url.pathname)) return send(res, 403, 'text/plain', 'this dashboard answers only to its own page, not to another site\'s')
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'read-only: GET only', { allow: 'GET' })
    const query = Object.fromEntries(url.searchParams)
    const known = route(url.pathname)
    if (known === undefined) return send(res, 404, 'text/plain', 'not found')
    const schema = known === 'events' ? EventsQuery : NoQuery
    const parsed = schema.safeParse(query)
    if (!parsed.success) return send(res, 400, 'application/json', JSON.stringify({ error: 'bad query', issues: parsed.error.issues.map(i => ({ path: i.path, message: i.message })) }))
    switch (known) {
      case 'state':
        return send(res, 200, 'application/json', JSON.stringify({ seq: live.seq, ...live.view, report: live.report ?? null }))
      case 'charts':
        return send(res, 200, 'application/json', JSON.stringify(runCharts(live.view, live.report)))
      case 'events': {
        if (streams.size >= MAX_STREAMS) return send(res, 503, 'text/plain', `${MAX_STREAMS} live pages are open already: close one`, { 'retry-after': '10' })
        // A reconnecting EventSource names the last event it saw; that beats the first call's `since`.
        const since = lastEventId(req.headers['last-event-id']) ?? (parsed.data as z.infer<typeof EventsQuery>).since ?? live.seq
        return stream(res, since)
      }
      default: {
        const file = await asset(known)
        return send(res, 200, file.type, file.body)
      }
    }
  }

  function stream (res: ServerResponse, since: number): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    streams.add(res, ['retry: 1000\n\n', ...live.since(since).map(recordEvent)])
  }
  live.on('record', applied => { streams.send(recordEvent(applied)) })
  live.on('report', () => { streams.send('event: report\ndata: {}\n\n') })
  live.on('reset', () => { streams.send('event: reset\ndata: {}\n\n') })

  const wanted = options.port ?? 8787
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(wanted, DASHBOARD_HOST, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    await live.close()
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new ConfigError(`port ${wanted} on ${DASHBOARD_HOST} is taken: choose another with --port (0 takes any free one)`, { cause: err })
    throw err
  }
  port = (server.address() as AddressInfo).port
  return {
    url: `http://${DASHBOARD_HOST}:${port}/`,
    port,
    async close () {
      streams.endAll()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
      await live.close()
    }
  }
}

type Route = 'state' | 'charts' | 'events' | AssetName

function route (path: string): Route | undefined {
  switch (path) {
    case '/': return 'index.html'
    case '/api/state': return 'state'
    case '/api/charts': return 'charts'
    case '/events': return 'events'
  }
  const name = path.slice(1)
  return isAsset(name) ? name : undefined
}

function recordEvent (applied: Applied): string {
  return `id: ${applied.seq}\nevent: record\ndata: ${JSON.stringify(applied)}\n\n`
}

function lastEventId (header: string | string[] | undefined): number | undefined {
  const parsed = LastEventId.safeParse(header)
  return parsed.success ? parsed.data : undefined
}

/** This loopback address and port, by IP or by the name localhost. */
const ownHosts = (port: number): string[] => [`${DASHBOARD_HOST}:${port}`, `localhost:${port}`]

function allowedHost (host: string | undefined, port: number): boolean {
  return host !== undefined && ownHosts(port).includes(host)
}

/**
 * A request a page on another site makes through the researcher's browser: its Host is ours,
 * but the browser says where it comes from (Sec-Fetch-Site; Origin where that is not sent).
 * Left unchecked, any site could hold every live stream open and lock the researcher's page
 * out (found red-teaming). Our own page, a typed address and a direct client (curl) pass.
 */
function fromAnotherSite (headers: IncomingHttpHeaders, port: number): boolean {
  const site = headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true
  const origin = headers.origin
  return origin !== undefined && !ownHosts(port).some(host => origin === `http://${host}`)
}

/**
 * A link to the page followed from elsewhere (a dashboard URL in a Matrix web client): a
 * top-level navigation to `/` opens no stream and reads nothing another site can see, and the
 * page's own requests then come from its own origin.
 */
function openingThePage (headers: IncomingHttpHeaders, path: string): boolean {
  return path === '/' && headers['sec-fetch-mode'] === 'navigate' && headers['sec-fetch-dest'] === 'document'
}

const PAGE_POLICY = "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

function send (res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // Vega compiles its expressions with Function(): the one thing the policy lets through beyond our own files.
    'content-security-policy': PAGE_POLICY,
    ...headers
  })
  res.end(body)
}
