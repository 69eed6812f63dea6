export * from './controlapi.js';
export * from './validate.js';
