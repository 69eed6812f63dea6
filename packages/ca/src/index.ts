/**
 * @shoal/ca — cluster root CA, node certificates, join tokens, renewal, revocation and gRPC mutual
 * TLS. Pure library: no networking of its own (see README-style notes in each module).
 */
export * from './certs.js';
export * from './tokens.js';
export * from './tls.js';
export * from './keys.js';
