export * from './table.js';
export * from './exec.js';
export * from './dataplane.js';
export * from './conntrack.js';
export * from './nft.js';
export * from './ipvs.js';
export * from './userspace.js';
export * from './dns.js';
