/** Entry point of the `shoal` bundle: runs the CLI on the process arguments and exits. */
import { run } from './cli.js';

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
