/**
 * @shoal/rpc — the manager's cluster-facing gRPC service (port 2377): server with certificate
 * authentication for every service on the port, a fail-over client, the dispatcher protocol over
 * it, and the join flow.
 */
export * from './codes.js';
export * from './service.js';
export * from './server.js';
export * from './methods.js';
export * from './client.js';
export * from './join.js';
