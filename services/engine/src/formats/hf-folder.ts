/**
 * Writing a Hugging Face model folder: config.json and the weights as model.safetensors, or as shards
 * model-0000i-of-0000n.safetensors with model.safetensors.index.json when they exceed `maxShardBytes`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BYTES_PER_ELEMENT, type StorageDtype } from './dtype.js';
import { elementCount, type HostTensor } from './host-tensor.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';

export interface HfFolderToWrite {
  readonly config: Record<string, unknown>;
  readonly weights: ReadonlyMap<string, HostTensor>;
  readonly dtype: StorageDtype;
  /** Split into shards of at most this many bytes (a tensor is never split). Default: one file. */
  readonly maxShardBytes?: number;
}

const TORCH_DTYPE: Record<StorageDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export function writeHfFolder(dir: string, folder: HfFolderToWrite): void {
  mkdirSync(dir, { recursive: true });
  const shards: TensorToWrite[][] = [[]];
  let shardBytes = 0;
  let totalBytes = 0;
  for (const [name, tensor] of folder.weights) {
    const bytes = elementCount(tensor.shape) * BYTES_PER_ELEMENT[folder.dtype];
    if (folder.maxShardBytes && shardBytes > 0 && shardBytes + bytes > folder.maxShardBytes) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1].push({ name, tensor });
    shardBytes += bytes;
    totalBytes += bytes;
  }
  const metadata = { format: 'pt' };
  if (shards.length === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), shards[0], folder.dtype, metadata);
  } else {
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      writeSafetensors(join(dir, file), shard, folder.dtype, metadata);
      for (const { name } of shard) weightMap[name] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2));
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...folder.config, torch_dtype: TORCH_DTYPE[folder.dtype] }, null, 2));
}
