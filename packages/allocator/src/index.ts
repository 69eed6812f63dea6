export * from './allocator.js';
export * from './ipam.js';
export * from './ports.js';
