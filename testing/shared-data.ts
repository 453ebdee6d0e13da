/**
 * The one policy for the shared model and data (../shared beside the repository root) in every
 * workspace's tests: present, they run; absent, the tests that need them skip with one line — except
 * under CI=true, where they run anyway and fail (CI must not pass by skipping).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The shared folder, with a trailing slash. */
export const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
export const hasShared = existsSync(SHARED);
const inCi = process.env.CI === 'true';
if (!hasShared && !inCi) console.warn(`tests: ${SHARED} is absent; the tests that read the shared model and data are skipped`);

/** Whether the tests that need the shared files run: they are there, or this is CI. */
export const runWithShared = hasShared || inCi;

export const sharedPath = (relative: string) => `${SHARED}${relative}`;
export const sharedUri = (relative: string) => pathToFileURL(sharedPath(relative)).href;

/** stories260K (llama2.c) and its tokenizer, and the TinyStories text they are calibrated on. */
export const STORIES_BIN = sharedPath('models/stories260K/stories260K.bin');
export const STORIES_TOKENIZER = sharedPath('models/stories260K/tok512.bin');
export const TINYSTORIES_TXT = sharedPath('data/text/tinystories_val_excerpt.txt');
