/** The source settings (STREAMLINE_FILE_ROOTS, STREAMLINE_S3_SOURCES, STREAMLINE_HF) and S3 prefix matching. */
import { describe, expect, it } from 'vitest';
import { settingsFromEnv } from '../src/settings.js';
import { s3SourceAllowed } from '../src/sources/source.service.js';
import { deniedSourceDirs, sourcePolicyFromEnv } from '../src/sources/source.settings.js';

describe('source settings', () => {
  it('defaults to nothing a tenant may name, and reads each setting', () => {
    expect(sourcePolicyFromEnv({})).toEqual({ fileRoots: null, s3Sources: [], hf: false });
    expect(settingsFromEnv({}).sources).toEqual({ fileRoots: null, s3Sources: [], hf: false });
    expect(sourcePolicyFromEnv({ STREAMLINE_FILE_ROOTS: '/data/models:/data/sets/', STREAMLINE_S3_SOURCES: 's3://bucket-b/models/, s3://bucket-c/', STREAMLINE_HF: 'on' })).toEqual({
      fileRoots: ['/data/models', '/data/sets'],
      s3Sources: ['s3://bucket-b/models/', 's3://bucket-c/'],
      hf: true,
    });
  });

  it.each([
    [{ STREAMLINE_FILE_ROOTS: 'models:/data' }, 'not an absolute directory'],
    [{ STREAMLINE_FILE_ROOTS: '/' }, 'every file'],
    [{ STREAMLINE_S3_SOURCES: 'https://bucket-b/models/' }, 'STREAMLINE_S3_SOURCES'],
    [{ STREAMLINE_S3_SOURCES: 's3://bucket-b/models/../x/' }, "no '.' or '..'"],
    [{ STREAMLINE_HF: 'yes' }, 'STREAMLINE_HF'],
  ])('refuses a bad setting at start: %j', (env, expected) => {
    expect(() => sourcePolicyFromEnv(env)).toThrow(expected);
  });

  it('denies the data directory and a local storage directory', () => {
    expect(deniedSourceDirs('/var/lib/streamline', undefined)).toEqual(['/var/lib/streamline']);
    expect(deniedSourceDirs('/d', 'file:///mnt/outputs')).toEqual(['/d', '/mnt/outputs']);
    expect(deniedSourceDirs('/d', '/mnt/outputs/')).toEqual(['/d', '/mnt/outputs']);
    expect(deniedSourceDirs('/d', 's3://bucket/prefix')).toEqual(['/d']);
  });

  it('matches s3:// sources on whole path segments, refusing dot segments and other buckets', () => {
    const allowed = ['s3://models-bucket/shared/llama/', 's3://data-bucket/'];
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/7b/', allowed)).toBe(true);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/', allowed)).toBe(true);
    expect(s3SourceAllowed('s3://data-bucket/sets/a.txt', allowed)).toBe(true);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama-private/', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared/', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/../../private/x', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/%2e%2e/x', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/a%2Fb', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared//llama/x', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://other-bucket/shared/llama/x', allowed)).toBe(false);
    expect(s3SourceAllowed('s3://models-bucket/shared/llama/x', [])).toBe(false);
  });
});
