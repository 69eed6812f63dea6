export * from './controlapi.js';
export * from './validate.js';
export * from './secrets.js';
