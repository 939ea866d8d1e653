// Entry of the Node.js bundle that the cold-start benchmark compares against (bench/sections/coldstart.ts):
// index.ts starts only under `import.meta.main`, which Node 20 lacks, so this calls its main() itself.
import { main } from "../index.ts";

const code = await main();
if (code !== undefined) process.exit(code);
