import { BridgeTowerError } from "../index.js";

/** A collection (the LanceDB table behind `bridgetower index` / `search`) cannot be opened or used as asked. */
export class CollectionError extends BridgeTowerError {
  override readonly exitCode = 9;
}

/**
 * The collection was indexed with other weights (or another dtype): embeddings from different models are not
 * comparable, so indexing into it or searching it with this model is refused.
 */
export class ModelMismatchError extends CollectionError {}

/** One source file (image, video, transcript, captions line) that could not be read or decoded; it is skipped. */
export class SourceError extends BridgeTowerError {
  override readonly exitCode = 2;
}
