export * from './constraint.js';
export * from './filters.js';
export * from './nodeinfo.js';
export * from './scheduler.js';
