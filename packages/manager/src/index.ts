export * from './manager.js';
