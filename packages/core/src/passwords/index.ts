export * from './hash.ts';
export * from './policy.ts';
