export * from './clock.js';
export * from './dispatcher.js';
export * from './local.js';
export * from './network.js';
