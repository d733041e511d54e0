import { JsonPlusSerializer } from '@langchain/langgraph-checkpoint'

/** What LangChain serialises of an object (Serializable.toJSON): its constructor arguments' keys, each read off the object. */
interface SerializableLike { lc_serializable: true, lc_kwargs: Record<string, unknown> }

/** An element's JSON, and the values it was made from, by key: a key reassigned since makes it stale. */
interface Serialised { json: string, from: ReadonlyArray<[string, unknown]> }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * LangGraph's JSON+ serialiser that writes a list (a conversation) element by element and
 * keeps each LangChain object's JSON: a checkpoint holds the whole conversation, so without it
 * every step serialised every message again (the agent layer's largest cost in a run:
 * ≈ 1.5 s of 60 for 5 agents over 10 classify rounds). The bytes are JsonPlusSerializer's own
 * (JSON.stringify writes a list as its elements' JSON joined by commas). A message is not
 * changed once it is in the state, but one may be serialised before it is (a node's pending
 * write, before LangGraph's messages reducer gives it an id, in place): an element whose
 * constructor arguments were added to or reassigned since is serialised again.
 */
export class MessageListSerializer extends JsonPlusSerializer {
  readonly #known = new WeakMap<object, Serialised>()

  override async dumpsTyped (value: unknown): Promise<[string, Uint8Array]> {
    if (!Array.isArray(value) || !value.every(isSerializable)) return super.dumpsTyped(value)
    return ['json', encoder.encode(`[${value.map(e => this.#json(e)).join(',')}]`)]
  }

  #json (element: SerializableLike): string {
    const known = this.#known.get(element)
    const keys = Object.keys(element.lc_kwargs)
    if (known !== undefined && known.from.length === keys.length && known.from.every(([key, v], i) => keys[i] === key && read(element, key) === v)) return known.json
    const from = keys.map((key): [string, unknown] => [key, read(element, key)])
    const json = decoder.decode(this._dumps(element))
    this.#known.set(element, { json, from })
    return json
  }
}

function isSerializable (value: unknown): value is SerializableLike {
  return typeof value === 'object' && value !== null && (value as Partial<SerializableLike>).lc_serializable === true &&
    typeof (value as Partial<SerializableLike>).lc_kwargs === 'object'
}

/** The value toJSON reads for `key`: the object's own property where it has one, else the constructor's argument. */
function read (element: SerializableLike, key: string): unknown {
  return key in element ? (element as unknown as Record<string, unknown>)[key] : element.lc_kwargs[key]
}
