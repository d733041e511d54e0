/** Every async call takes `options` last; these are the shared parts. */
export interface AbortOptions {
  signal?: AbortSignal
}

export interface ProgressOptions<Event> {
  onProgress?: (event: Event) => void
}
