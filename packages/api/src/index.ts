export * from './objects.js';
export * from './errors.js';
export * from './ids.js';
export * from './defaults.js';
export * from './dispatcher.js';
export * from './rpc.js';
export * from './constraints.js';
export * from './handoff.js';
