/**
 * A trainer's checkpoint on disk, as training (train.ts) and healing (heal.ts) keep it:
 * `dir/checkpoint/{state.json, tensors.safetensors}` — the run's own state (JSON: its resume key, step and
 * counters), the trainer's weights and AdamW moments, and the best weights so far. It is replaced through
 * `checkpoint.tmp` (write, then rename), so a crash mid-write leaves the previous one intact and a
 * half-written one is never read. Tensors are stored exactly as trained (matrices [in, out]) by either
 * trainer; the best weights in Hugging Face layout.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../formats/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors.js';
import type { ReplacementTrainer, TrainerState } from '../training/trainer.js';

/** What every run's state.json holds besides its own fields (the object store reads `step`). */
export interface CheckpointState {
  /** Identifies model, block, data and settings; a checkpoint with another key is not resumed. */
  key: string;
  step: number;
}

export function saveCheckpoint<State extends CheckpointState>(dir: string, state: State, trained: TrainerState, best: ReadonlyMap<string, HostTensor> | null): void {
  const tmp = join(dir, 'checkpoint.tmp');
  const final = join(dir, 'checkpoint');
  const old = join(dir, 'checkpoint.old');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const tensors = [];
  for (const [name, p] of trained.params) {
    tensors.push({ name: `param.${name}`, tensor: p });
    tensors.push({ name: `m.${name}`, tensor: trained.firstMoments.get(name)! });
    tensors.push({ name: `v.${name}`, tensor: trained.secondMoments.get(name)! });
  }
  for (const [name, t] of best ?? []) tensors.push({ name: `best.${name}`, tensor: t });
  writeSafetensors(join(tmp, 'tensors.safetensors'), tensors, 'F32');
  writeFileSync(join(tmp, 'state.json'), JSON.stringify({ ...state, optimizerStep: trained.step }));
  rmSync(old, { recursive: true, force: true });
  if (existsSync(final)) renameSync(final, old);
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}

/** The checkpoint in `dir` with this key, restored into `trainer`; null when there is none (or another run's). */
export async function loadCheckpoint<State extends CheckpointState>(dir: string, key: string, trainer: ReplacementTrainer): Promise<{ state: State; best: Map<string, HostTensor> | null } | null> {
  // A crash between the two renames leaves only checkpoint.old.
  const found = [join(dir, 'checkpoint'), join(dir, 'checkpoint.old')].find((path) => existsSync(join(path, 'state.json')) && existsSync(join(path, 'tensors.safetensors')));
  if (!found) return null;
  let state: State & { optimizerStep: number };
  try {
    state = JSON.parse(readFileSync(join(found, 'state.json'), 'utf8'));
  } catch {
    return null;
  }
  if (state.key !== key) return null;
  const file = SafetensorsFile.open(join(found, 'tensors.safetensors'));
  try {
    const names = [...(await trainer.params()).keys()];
    const read = (prefix: string) => new Map(names.map((name) => [name, file.read(`${prefix}.${name}`)]));
    await trainer.restore({ params: read('param'), firstMoments: read('m'), secondMoments: read('v'), step: state.optimizerStep });
    const best = file.has(`best.${names[0]}`) ? read('best') : null;
    return { state, best };
  } finally {
    file.close();
  }
}
