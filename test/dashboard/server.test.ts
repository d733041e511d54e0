import { request } from 'node:http'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_STREAMS, startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import { RunView } from '../../src/federation/run-view.ts'
import { recorderInTurn } from '../../src/federation/tally.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { tempDir } from '../federation/helpers.ts'
import { treeOf } from '../federation/sealed-run.ts'
import { LedgerWriter, oneRound } from './ledger-writer.ts'

/** A GET with the headers a browser would not let a page choose (Host), answered as status and body. */
async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number, body: string, type?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }) })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Reads server-sent events from `url` until `count` have arrived. */
async function events (url: string, count: number, opened: () => Promise<void>, headers: Record<string, string> = {}): Promise<Array<{ id: string, event: string, data: unknown }>> {
  const controller = new AbortController()
  const res = await fetch(url, { headers, signal: controller.signal })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  const got: Array<{ id: string, event: string, data: unknown }> = []
  let buffer = ''
  let trigger: Promise<void> | undefined
  while (got.length < count) {
    const { value, done } = await reader.read()
    if (done) break
    buffer += decoder.decode(value, { stream: true })
    trigger ??= opened()
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const fields: Record<string, string> = Object.fromEntries(buffer.slice(0, end).split('\n').filter(l => !l.startsWith(':')).map(l => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]))
      buffer = buffer.slice(end + 2)
      if (fields.event !== undefined) got.push({ id: fields.id ?? '', event: fields.event, data: JSON.parse(fields.data ?? 'null') })
    }
  }
  controller.abort()
  await trigger
  return got
}

describe('conclave dashboard: the server', () => {
  let dir: string
  let writer: LedgerWriter
  let dashboard: Dashboard

  beforeEach(async () => {
    dir = await tempDir('conclave-dashboard-')
    writer = await LedgerWriter.create(join(dir, 'ledger'))
    await oneRound(writer)
    dashboard = await startDashboard({ dir, port: 0, intervalMs: 20 })
  })
  afterEach(async () => {
    await dashboard.close()
    await writer.close()
  })

  it('serves the run on 127.0.0.1: every round, proposal, vote and decision the ledger holds, named', async () => {
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/`)
    const res = await get(`${dashboard.url}api/state`)
    expect(res.status).toBe(200)
    const state = RunView.extend({ seq: RunView.shape.required }).parse(JSON.parse(res.body))
    expect(state.seq).toBe(14)
    expect(state.rounds.map(r => ({ round: r.round, proposals: r.proposals.length, accepted: r.accepted, rejected: r.rejected }))).toEqual([{ round: 1, proposals: 3, accepted: 2, rejected: 1 }])
    const recorder = recorderInTurn(writer.members.map(m => m.did).sort(), 1)
    expect(state.proposals.map(p => ({ proposer: p.proposer.name, decision: p.decision?.accepted, by: p.decision?.by.did }))).toEqual([
      { proposer: 'agent-1', decision: true, by: recorder },
      { proposer: 'agent-2', decision: true, by: recorder },
      { proposer: 'agent-3', decision: false, by: recorder }
    ])
    expect(state.votes.map(v => `${v.voter.name} ${v.accept ? 'accepts' : 'rejects'} ${state.proposals.find(p => p.block === v.proposal)?.proposer.name}: ${v.rationale}`)).toEqual([
      'agent-2 accepts agent-1: better on my data', 'agent-3 accepts agent-1: better on my data',
      'agent-1 accepts agent-2: better on my data', 'agent-3 accepts agent-2: better on my data',
      'agent-1 rejects agent-3: worse on my data', 'agent-2 rejects agent-3: worse on my data'
    ])
    expect(state.decisions).toHaveLength(3)
    expect(state.reputation.filter(r => r.round === 1).map(r => [r.member.name, r.accepted, r.rejected, r.votes])).toEqual([['agent-1', 1, 0, 2], ['agent-2', 1, 0, 2], ['agent-3', 0, 1, 2]])
    expect(state.blocks.map(b => b.type)).toEqual(['charter', ...Array(3).fill('proposal'), ...Array(6).fill('vote'), ...Array(3).fill('decision'), 'checkpoint'])
  })

  it('sends one event per record that lands, and the state then shows it', async () => {
    const got = await events(`${dashboard.url}events`, 3, async () => {
      const p = await writer.propose(0)
      await writer.vote(1, p, false, 'loss rose on my validation split')
      await writer.vote(2, p, true)
    })
    expect(got.map(e => [e.id, e.event, (e.data as { type: string }).type])).toEqual([['14', 'record', 'proposal'], ['15', 'record', 'vote'], ['16', 'record', 'vote']])
    const state = JSON.parse((await get(`${dashboard.url}api/state`)).body) as RunView & { seq: number }
    expect(state.seq).toBe(17)
    expect(state.proposals.filter(p => p.round === 2).map(p => ({ proposer: p.proposer.name, decision: p.decision }))).toEqual([{ proposer: 'agent-1', decision: null }])
    expect(state.votes.filter(v => v.round === 2).map(v => v.rationale)).toEqual(['loss rose on my validation split', 'better on my data'])
  })

  // Found red-teaming: 300 idle live connections were all accepted and held.
  it('holds at most MAX_STREAMS live pages open: one more is told to come back, and the state is still served', async () => {
    const controllers = Array.from({ length: MAX_STREAMS }, () => new AbortController())
    try {
      const opened = await Promise.all(controllers.map(async c => fetch(`${dashboard.url}events`, { signal: c.signal })))
      expect(opened.map(r => r.status)).toEqual(Array(MAX_STREAMS).fill(200))
      expect((await get(`${dashboard.url}events`)).status).toBe(503)
      expect((await get(`${dashboard.url}api/state`)).status).toBe(200)
    } finally {
      for (const c of controllers) c.abort()
    }
  })

  it('replays the records after `since`, so a page that read the state misses none', async () => {
    const got = await events(`${dashboard.url}events?since=12`, 2, async () => {})
    expect(got.map(e => [e.id, (e.data as { type: string }).type])).toEqual([['12', 'decision'], ['13', 'checkpoint']])
  })

  // A page dropped for falling behind (EventStreams) reconnects this way, its first URL's `since` unchanged.
  it('resumes a reconnecting page after the last event it saw (Last-Event-ID), however far behind', async () => {
    const got = await events(`${dashboard.url}events?since=0`, 2, async () => {}, { 'last-event-id': '11' })
    expect(got.map(e => [e.id, (e.data as { type: string }).type])).toEqual([['12', 'decision'], ['13', 'checkpoint']])
  })

  it('shows a record the protocol refuses (a non-member\'s vote) only as refused', async () => {
    const stranger = createIdentity(randomSecretKey())
    writer.members.push(stranger)
    const p = await writer.propose(0)
    await expect(writer.vote(3, p, false)).rejects.toMatchObject({ name: 'NotMemberError' })
    const got = await events(`${dashboard.url}events?since=14`, 2, async () => {})
    expect(got.map(e => e.data)).toEqual([
      { seq: 14, block: p.id, type: 'proposal', round: 2 },
      { seq: 15, block: expect.any(String), type: 'vote', round: 0, refused: 'ERR_NOT_MEMBER' }
    ])
    const state = JSON.parse((await get(`${dashboard.url}api/state`)).body) as RunView
    expect(state.votes.filter(v => v.voter.did === stranger.did)).toEqual([])
    expect(state.refused).toEqual([{ seq: 15, block: expect.any(String), type: 'vote', code: 'ERR_NOT_MEMBER' }])
  })

  it('serves the page, its script and the chart libraries from this machine', async () => {
    for (const [path, type] of [['', 'text/html'], ['app.js', 'text/javascript'], ['vendor/vega.js', 'text/javascript'], ['vendor/vega-lite.js', 'text/javascript'], ['vendor/vega-embed.js', 'text/javascript']]) {
      const res = await get(`${dashboard.url}${path}`)
      expect({ path, status: res.status, type: res.type?.split(';')[0] }).toEqual({ path, status: 200, type })
    }
    const charts = JSON.parse((await get(`${dashboard.url}api/charts`)).body) as Array<{ id: string }>
    expect(charts.map(c => c.id)).toEqual(['timeline', 'learning', 'votes', 'reputation', 'dag'])
  })

  it('answers 404 to unknown paths, 400 to unknown or malformed query parameters, 405 to anything but GET', async () => {
    const status = async (path: string, method = 'GET'): Promise<number> => (await get(`${dashboard.url}${path}`, {}, method)).status
    expect(await status('nope')).toBe(404)
    expect(await status('vendor/../package.json')).toBe(404)
    expect(await status('%2e%2e/package.json')).toBe(404)
    expect(await status('vendor/vega.min.js')).toBe(404)
    expect(await status('api/state?round=1')).toBe(400)
    expect(await status('events?since=-1')).toBe(400)
    expect(await status('events?since=1&x=2')).toBe(400)
    expect(await status('api/state', 'POST')).toBe(405)
  })

  it('refuses a request whose Host is not this loopback address (a page reaching it by DNS rebinding)', async () => {
    expect((await get(`${dashboard.url}api/state`, { host: 'attacker.example' })).status).toBe(421)
    expect((await get(`${dashboard.url}api/state`, { host: `attacker.example:${dashboard.port}` })).status).toBe(421)
    expect((await get(`${dashboard.url}api/state`, { host: `localhost:${dashboard.port}` })).status).toBe(200)
  })

  // Found red-teaming: a page on any web site could open MAX_STREAMS live streams from the researcher's browser (Host is ours) and lock their own page out.
  it('refuses what another site\'s page asks (403), opening no stream, so the researcher\'s page still gets its own', async () => {
    const crossSite = { origin: 'https://attacker.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' }
    const controllers = Array.from({ length: MAX_STREAMS }, () => new AbortController())
    try {
      const refused = await Promise.all(controllers.map(async c => fetch(`${dashboard.url}events?since=0`, { headers: crossSite, signal: c.signal })))
      expect(refused.map(r => r.status)).toEqual(Array(MAX_STREAMS).fill(403))
      const own = await events(`${dashboard.url}events?since=13`, 1, async () => {})
      expect(own.map(e => [e.id, (e.data as { type: string }).type])).toEqual([['13', 'checkpoint']])
    } finally {
      for (const c of controllers) c.abort()
    }
  })

  it('tells another site\'s request (Sec-Fetch-Site, or an Origin not its own) from its own page\'s and a direct one', async () => {
    const status = async (headers: Record<string, string>): Promise<number> => (await get(`${dashboard.url}api/state`, headers)).status
    const own = `http://127.0.0.1:${dashboard.port}`
    expect({
      crossSite: await status({ 'sec-fetch-site': 'cross-site' }),
      sameSite: await status({ 'sec-fetch-site': 'same-site' }),
      foreignOrigin: await status({ origin: 'http://attacker.example' }),
      otherPort: await status({ origin: `http://127.0.0.1:${dashboard.port === 1 ? 2 : dashboard.port - 1}` }),
      opaqueOrigin: await status({ origin: 'null' }),
      ownOriginCrossSite: await status({ origin: own, 'sec-fetch-site': 'cross-site' }),
      ownPage: await status({ origin: own, 'sec-fetch-site': 'same-origin' }),
      byLocalhost: await status({ host: `localhost:${dashboard.port}`, origin: `http://localhost:${dashboard.port}` }),
      typedAddress: await status({ 'sec-fetch-site': 'none' }),
      direct: await status({})
    }).toEqual({
      crossSite: 403, sameSite: 403, foreignOrigin: 403, otherPort: 403, opaqueOrigin: 403, ownOriginCrossSite: 403,
      ownPage: 200, byLocalhost: 200, typedAddress: 200, direct: 200
    })
  })

  it('opens the page from a link followed on another site (a top-level navigation to /), and only the page', async () => {
    const navigate = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    expect((await get(dashboard.url, navigate)).status).toBe(200)
    expect((await get(`${dashboard.url}api/state`, navigate)).status).toBe(403)
    expect((await get(`${dashboard.url}events?since=0`, navigate)).status).toBe(403)
    expect((await get(dashboard.url, { ...navigate, 'sec-fetch-dest': 'iframe' })).status).toBe(403)
  })

  it('writes nothing into the run directory', async () => {
    const before = await treeOf(dir)
    await get(`${dashboard.url}api/state`)
    await get(`${dashboard.url}api/charts`)
    await events(`${dashboard.url}events?since=0`, 14, async () => {})
    await dashboard.close()
    dashboard = await startDashboard({ dir, port: 0 })
    expect(await treeOf(dir)).toEqual(before)
  })

  it('refuses to serve what is not a directory, or on a port that is taken (ConfigError)', async () => {
    await expect(startDashboard({ dir: join(dir, 'missing'), port: 0 })).rejects.toMatchObject({ name: 'ConfigError' })
    await expect(startDashboard({ dir, port: dashboard.port })).rejects.toMatchObject({ name: 'ConfigError' })
  })
})
