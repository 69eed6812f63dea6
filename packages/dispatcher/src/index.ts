export * from './dispatcher.js';
export * from './local.js';
export * from './network.js';
