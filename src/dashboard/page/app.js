// The dashboard page: draws /api/state and /api/charts, and draws them again whenever
// /events says a record landed. Everything a run's records say (rationales above all: an
// agent's model writes them) goes into the page as text, never as HTML.
'use strict'

/** @type {Map<string, { finalize(): void }>} the embedded chart views, by chart id */
const views = new Map()
let redraw = 0

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value))
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  return node
}

const signed = value => (value >= 0 ? '+' : '') + value.toFixed(4)

const thumb = accept => accept ? '👍' : '👎'

/** Researchers' reactions on a proposal: those the ledger holds as their votes, and those anchored that count for nothing. */
function humanLines (humans, uncounted) {
  return [
    ...humans.map(h => el('p', { class: 'human', 'data-human': h.block },
      `${thumb(h.accept)} from ${h.researcher} (reaction ${h.event}), anchored by ${h.recordedBy.name} · ${h.counted ? 'counts toward the quorum' : 'advisory, beside the members\' votes'}`)),
    ...uncounted.map(u => el('p', { class: 'human uncounted', 'data-uncounted': u.block },
      `⚠ a ${thumb(u.accept)} said to be ${u.researcher}'s (reaction ${u.event}), anchored by ${u.witnesses.map(w => w.name).join(', ')} only: counts for nothing`))
  ]
}

function proposalCard (p, votes, humans = [], uncounted = []) {
  const state = p.decision === null ? 'undecided' : p.decision.accepted ? 'accepted' : 'rejected'
  const decision = p.decision === null
    ? `waiting for votes: ${votes.length} cast`
    : `${state}: ${p.decision.accepts} accept, ${p.decision.rejects} reject, ${p.decision.required} needed · decided by ${p.decision.by.name}, the round's recorder`
  const rows = votes.map(v => el('tr', { 'data-vote': v.block },
    el('td', {}, v.voter.name),
    el('td', { class: v.accept ? 'accept' : 'reject' }, v.accept ? 'accept' : 'reject'),
    el('td', {}, signed(v.score)),
    el('td', { class: 'rationale' }, v.rationale),
    el('td', {}, v.decidedBy ?? '')))
  return el('article', { class: `proposal ${state}`, 'data-proposal': p.block, 'data-decision': state },
    el('h3', {}, `Round ${p.round} · ${p.proposer.name} proposes an update `, el('code', {}, p.block.slice(0, 12))),
    el('p', { class: 'decision' }, decision, p.metric === null ? '' : ` · ${p.metric.name} ${p.metric.value.toFixed(4)} on its own data, ${p.numSamples} samples`),
    ...humanLines(humans, uncounted),
    el('table', {},
      el('thead', {}, el('tr', {}, ...['voter', 'vote', 'change measured', 'rationale', 'decided by'].map(h => el('th', {}, h)))),
      el('tbody', {}, ...rows)))
}

function drawState (state) {
  document.getElementById('federation').textContent = state.federation ?? '(no charter yet)'
  const finished = state.report === null ? 'running or stopped (no report yet)' : `finished, model ${state.report.modelHash.slice(0, 12)}…`
  const models = state.checkpoints.rederived ? 'each round\'s model derived again from its accepted updates' : `round models as their recorders signed them, not derived again (${state.checkpoints.why})`
  document.getElementById('status').textContent =
    `${state.seq} records · ${state.proposals.length} proposals · ${state.votes.length} votes · ${state.decisions.length} decisions · ${state.refused.length} refused${state.humanVotesUncounted.length === 0 ? '' : ` · ${state.humanVotesUncounted.length} reactions anchored as researchers' votes count for nothing`} · ${finished} · ${models}`
  document.body.dataset.seq = String(state.seq)
  const of = (list, p) => list.filter(x => x.proposal === p.block)
  const cards = [...state.proposals].reverse().map(p => proposalCard(p, of(state.votes, p), of(state.humanVotes, p), of(state.humanVotesUncounted, p)))
  document.getElementById('proposals').replaceChildren(...cards)
}

async function drawCharts (charts) {
  for (const chart of charts) {
    const figure = document.getElementById(`chart-${chart.id}`)
    if (figure === null) continue
    const target = el('div')
    const result = await vegaEmbed(target, { ...chart.spec, title: chart.title }, { actions: false, renderer: 'svg' })
    views.get(chart.id)?.finalize()
    views.set(chart.id, result)
    figure.replaceChildren(target)
  }
}

async function load () {
  const mine = ++redraw
  const [state, charts] = await Promise.all([fetch('/api/state').then(r => r.json()), fetch('/api/charts').then(r => r.json())])
  if (mine !== redraw) return state.seq
  drawState(state)
  await drawCharts(charts)
  document.body.dataset.drawn = String(state.seq)
  return state.seq
}

let pending
function soon () {
  clearTimeout(pending)
  pending = setTimeout(() => { load().catch(showError) }, 150)
}

function showError (err) {
  document.getElementById('status').textContent = `cannot read the run: ${err.message}`
}

async function start () {
  const seq = await load()
  const events = new EventSource(`/events?since=${seq}`)
  for (const type of ['record', 'report', 'reset']) events.addEventListener(type, soon)
}

start().catch(showError)
