/** The image's entry point (bundled by build.mjs into one file). */
import { main } from './server.js';

await main();
