import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import { runFederation } from '../../src/federation/run.ts'
import type { RunView } from '../../src/federation/run-view.ts'
import type { Block } from '../../src/ledger/index.ts'
import { LedgerWriter } from '../dashboard/ledger-writer.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'

/** Debian's chromium (apt-get install chromium); CHROMIUM names another build. */
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
/** Where to save a screenshot of the finished run's page (the README's docs/dashboard.png), when set. */
const SCREENSHOT = process.env.DASHBOARD_SCREENSHOT
const ALICE = '@alice:lab'
/** A short window: a charter counting researchers' votes decides a proposal only once its window is over. */
const WINDOW = 5

/**
 * The dashboard in a real headless Chromium: a small finished run (3 agents, 2 rounds, the
 * third member hostile so the quorum rejects its updates), then records appended to its
 * ledger while the page is open.
 */
describe('conclave dashboard in headless Chromium', () => {
  let dir: string
  let dashboard: Dashboard
  let browser: Browser
  let page: Page
  const errors: string[] = []

  beforeAll(async () => {
    await access(CHROMIUM).catch(() => { throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM`) })
    dir = join(await tempDir('conclave-dashboard-'), 'run')
    await runFederation(smallConfig({ rounds: 2, attacks: [{ kind: 'sign-flip', agent: 3 }], researchers: [ALICE], humanVotes: 'counted', windowSeconds: WINDOW }), { out: dir })
    dashboard = await startDashboard({ dir, port: 0, intervalMs: 50 })
    // No sandbox: CI containers run as root, and the page is our own, on loopback.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } })
    page.on('pageerror', err => { errors.push(err.message) })
    page.on('console', message => { if (message.type() === 'error') errors.push(message.text()) })
  })
  afterAll(async () => {
    await browser?.close()
    await dashboard?.close()
  })

  it('loads and shows every proposal of the run, with its decision, votes and charts', async () => {
    const state = await (await fetch(`${dashboard.url}api/state`)).json() as RunView & { seq: number }
    expect(state.proposals).toHaveLength(6)
    await page.goto(dashboard.url)
    await page.waitForSelector(`body[data-drawn="${state.seq}"]`)
    const shown = await page.locator('[data-proposal]').evaluateAll(cards => cards.map(c => [(c as HTMLElement).dataset.proposal, (c as HTMLElement).dataset.decision, c.querySelectorAll('[data-vote]').length]))
    const expected = state.proposals.map(p => [p.block, p.decision?.accepted === true ? 'accepted' : 'rejected', 2])
    expect(shown.sort()).toEqual(expected.sort())
    expect(expected.filter(([, decision]) => decision === 'rejected')).toHaveLength(2)
    // The run's store is there: every checkpoint's model was derived again, as the audit does.
    expect(await page.locator('#status').textContent()).toContain("each round's model derived again from its accepted updates")
    for (const chart of ['timeline', 'learning', 'votes', 'reputation', 'dag']) {
      expect(await page.locator(`#chart-${chart} svg`).count(), chart).toBeGreaterThan(0)
    }
    expect(errors).toEqual([])
    if (SCREENSHOT !== undefined) await page.screenshot({ path: SCREENSHOT })
  })

  it('updates when records land, and shows a rationale as text, never as markup', async () => {
    const writer = await LedgerWriter.extend(dir)
    try {
      // Every member proposes, so the recorder may decide the first at once (a round closes once all proposed, or a window on).
      const [proposal] = [await writer.propose(0), await writer.propose(1), await writer.propose(2)] as [Block, Block, Block]
      await page.waitForSelector(`[data-proposal="${proposal.id}"][data-decision="undecided"]`)
      const hostile = '<img src=x onerror="window.pwned = true">'
      await writer.vote(1, proposal, false, hostile)
      await writer.vote(2, proposal, true)
      // A member anchors a 👍 the researcher never made: one witness of the two the charter asks, so it counts for nothing, and the page says so.
      const forged = await writer.append(1, { type: 'human-vote', federation: writer.federation, round: writer.round, proposal: proposal.id, researcher: ALICE, accept: true, event: '$never' })
      await new Promise(resolve => setTimeout(resolve, (proposal.time + WINDOW + 1) * 1000 - Date.now()))
      await writer.decide(proposal)
      await page.waitForSelector(`[data-proposal="${proposal.id}"][data-decision="rejected"]`)
      expect(await page.locator('[data-proposal]').count()).toBe(9)
      const rationales = await page.locator(`[data-proposal="${proposal.id}"] td.rationale`).allTextContents()
      expect(rationales).toEqual([hostile, 'better on my data'])
      expect(await page.locator(`[data-proposal="${proposal.id}"] [data-uncounted="${forged.id}"]`).textContent()).toBe(`⚠ a 👍 said to be ${ALICE}'s (reaction $never), anchored by agent-2 only: counts for nothing`)
      expect(await page.locator('#status').textContent()).toContain("1 reactions anchored as researchers' votes count for nothing")
      expect(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned)).toBeUndefined()
      expect(await page.locator('[data-proposal] img').count()).toBe(0)
    } finally {
      await writer.close()
    }
    expect(errors).toEqual([])
  })
})
