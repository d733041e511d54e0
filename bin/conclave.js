#!/usr/bin/env node
// Conclave's sources are TypeScript run by Node's own type stripping (Node ≥ 24).
const [major] = process.versions.node.split('.').map(Number)
if (major < 24) {
  process.stderr.write(`conclave needs Node 24 or later (this is ${process.version}). Inside the project, ` +
    'run it through npm or npx, which use the Node 24 that `npm install` put in node_modules/.bin.\n')
  process.exit(1)
}
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
