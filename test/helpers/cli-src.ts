/** The CLI from the sources (no build needed): `node --import tsx test/helpers/cli-src.ts <command> ...`. */
import { main } from "../../src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
