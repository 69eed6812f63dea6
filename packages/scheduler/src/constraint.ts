/** Placement constraints live in `@shoal/api` (shared with the orchestrators and the control API). */
export { type Constraint, parseConstraint, parseConstraints, matchConstraints } from '@shoal/api';
