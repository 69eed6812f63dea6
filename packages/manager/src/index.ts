export * from './manager.js';
export { RoleManager, ROLE_RECONCILE_INTERVAL_MS } from './role-manager.js';
