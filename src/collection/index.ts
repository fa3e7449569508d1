export { Collection, ANN_MIN_ROWS, type CollectionOptions } from "./collection.js";
export { CollectionError, ModelMismatchError, SourceError } from "./errors.js";
export type { AddOptions, AddSummary, IndexProgress } from "./indexer.js";
export { DEFAULT_COLLECTION_MODEL, type ModelOptions } from "./model.js";
export { reorderReranked, type Query, type SearchOptions, type SearchResult } from "./search.js";
export type { ModelRecord } from "./table.js";
