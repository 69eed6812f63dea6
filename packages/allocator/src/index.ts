export * from './allocator.js';
export { EndpointAllocator, type EndpointAllocatorOptions, type Held } from './endpoint-allocator.js';
export * from './ipam.js';
export { UndoJournal } from './journal.js';
export { NetworkAllocator, type NetworkAllocatorOptions } from './network-allocator.js';
export * from './ports.js';
export { TaskAllocator } from './task-allocator.js';
