/** Placement constraints live in `@shoal/api` (shared with the scheduler and the control API). */
export { type Constraint, parseConstraint, parseConstraints, matches } from '@shoal/api';
