import { BridgeTowerError } from "../errors.js";

/** The browser's storage (Cache Storage) refused to keep the int8 weights: quota full, or storage unavailable. */
export class StorageError extends BridgeTowerError {}
