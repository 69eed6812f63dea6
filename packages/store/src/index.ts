export * from './store.js';
export * from './loopback.js';
