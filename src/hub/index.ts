export type { HubOptions, HubProgress } from "./options.js";
export { hubFile, isLocalFolder, resolveModel, DEFAULT_FILES } from "./resolve.js";
