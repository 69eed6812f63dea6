/**
 * `@shoal/shoal`: the `shoal` command-line client. The executable is `bin/shoal.js` (which loads
 * the esbuild bundle `dist/shoal.mjs`); this module exports the pieces for tests and reuse.
 */
export { run, VERSION } from './cli.js';
export { UsageError, ExitError } from './errors.js';
export * from './format/table.js';
export * from './format/duration.js';
export * from './format/ports.js';
export * from './format/text.js';
export * from './format/tables.js';
export * from './format/pretty.js';
export * from './format/template.js';
export * from './parse/values.js';
export * from './parse/argv.js';
export * from './parse/options.js';
