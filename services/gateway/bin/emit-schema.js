#!/usr/bin/env node
// Writes the code-first schema to schema.graphql at the repository root (checked in; a test compares).
import 'reflect-metadata';
import { register } from 'tsx/esm/api';

register();
const { emitSchema } = await import('../scripts/emit-schema.ts');
await emitSchema();
