import { BackendUnavailableError } from '../../core/errors.ts'

/**
 * The homeserver's answer to a request sent to `url` only: followed, a redirect (307, 308)
 * would re-send the body (a registration MAC, a password, a signed record or vote) and the
 * access token to whatever the Location names. Every Matrix request goes through here.
 */
export async function fromHomeserver (url: URL | string | Request, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(url, { ...init, redirect: 'manual' })
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel()
    throw new BackendUnavailableError(`the homeserver at ${url instanceof Request ? url.url : String(url)} answered with a redirect (HTTP ${response.status} to ${response.headers.get('location') ?? 'nowhere'}): refused, Matrix requests go to the configured URL only`)
  }
  return response
}
