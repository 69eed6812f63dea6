export * from './clock.js';
export * from './dispatcher.js';
export * from './local.js';
