export * from './catalogue.ts';
export * from './clock.ts';
export * from './errors.ts';
export * from './event-store/index.ts';
export * from './ids.ts';
export * from './schemas.ts';
