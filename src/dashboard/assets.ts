import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The files the page is made of: its own (page/) and the chart libraries, served from the
 * installed packages so the page works offline and without any CDN.
 */
const ASSETS = {
  'index.html': { type: 'text/html; charset=utf-8', path: () => page('index.html') },
  'app.js': { type: 'text/javascript; charset=utf-8', path: () => page('app.js') },
  'style.css': { type: 'text/css; charset=utf-8', path: () => page('style.css') },
  'vendor/vega.js': { type: 'text/javascript; charset=utf-8', path: () => besideEntry('vega', 'vega.min.js') },
  'vendor/vega-lite.js': { type: 'text/javascript; charset=utf-8', path: () => besideEntry('vega-lite', 'vega-lite.min.js') },
  'vendor/vega-embed.js': { type: 'text/javascript; charset=utf-8', path: () => besideEntry('vega-embed', 'vega-embed.min.js') }
} as const
export type AssetName = keyof typeof ASSETS

export function isAsset (name: string): name is AssetName {
  return Object.hasOwn(ASSETS, name)
}

const cache = new Map<AssetName, Promise<{ type: string, body: Buffer }>>()

/** An asset's bytes, read once. */
export async function asset (name: AssetName): Promise<{ type: string, body: Buffer }> {
  let loaded = cache.get(name)
  if (loaded === undefined) {
    const { type, path } = ASSETS[name]
    loaded = readFile(path()).then(body => ({ type, body }))
    loaded.catch(() => cache.delete(name))
    cache.set(name, loaded)
  }
  return loaded
}

function page (name: string): string {
  return fileURLToPath(new URL(`./page/${name}`, import.meta.url))
}

/** A package's browser build sits beside its module entry (`build/`), which its exports do not name. */
function besideEntry (pkg: string, file: string): string {
  return join(dirname(fileURLToPath(import.meta.resolve(pkg))), file)
}
