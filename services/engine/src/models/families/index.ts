import { EngineError } from '../../errors.js';
import type { ArchitectureFamily } from '../architecture.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { opt } from './opt.js';
import { qwen2 } from './qwen2.js';

export const FAMILIES: readonly ArchitectureFamily[] = [llama, mistral, qwen2, opt];

export const SUPPORTED_MODEL_TYPES = FAMILIES.map((family) => family.modelType);

/** The family of a config.json `model_type`; anything else is refused before any work starts. */
export function familyFor(modelType: unknown): ArchitectureFamily {
  const family = FAMILIES.find((candidate) => candidate.modelType === modelType);
  if (!family) {
    throw new EngineError(
      'UNSUPPORTED_MODEL',
      `model_type ${JSON.stringify(modelType ?? null)} is not supported; supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  }
  return family;
}
