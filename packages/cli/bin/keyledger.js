#!/usr/bin/env node
// The `keyledger` binary: loads the TypeScript sources through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
