import { z } from 'zod'

/**
 * The model behind an agent's loop, by spec string:
 *   `policy`          the deterministic protocol policy (the embedded default)
 *   `ollama:<model>`  a model served by Ollama (ChatOllama)
 *   `gguf:<path>`     a local GGUF file run in-process (node-llama-cpp)
 */
export const LlmSpec = z.string().trim().refine(
  s => s === 'policy' || /^ollama:[\w.:/-]+$/.test(s) || /^gguf:.+\.gguf$/.test(s),
  'expected policy, ollama:<model> or gguf:<path to a .gguf file>'
)
export type LlmSpec = z.infer<typeof LlmSpec>
