/**
 * The library's typed errors. Library code throws these; only the CLI turns them into
 * one line on stderr and an exit code (see `exitCode`).
 */
export class BridgeTowerError extends Error {
  /** The file, folder, repo id or input the error is about (empty when there is none). */
  readonly input: string;
  /** CLI exit code for this class of error. */
  readonly exitCode: number = 1;
  constructor(input: string, message: string, options?: { cause?: unknown }) {
    super(input ? `${input}: ${message}` : message, options);
    this.input = input;
    this.name = new.target.name;
  }
}

/** A checkpoint file (safetensors, pytorch_model.bin) is malformed or unreadable. */
export class CheckpointFormatError extends BridgeTowerError {
  override readonly exitCode = 3;
}

/** config.json / preprocessor_config.json is missing, malformed or describes an unsupported model. */
export class ConfigError extends BridgeTowerError {
  override readonly exitCode = 4;
}

/** The checkpoint is valid but cannot serve the request (missing head, shape mismatch, unsupported variant). */
export class UnsupportedCheckpointError extends BridgeTowerError {
  override readonly exitCode = 5;
}

/** An image cannot be decoded or is out of bounds. */
export class ImageError extends BridgeTowerError {
  override readonly exitCode = 6;
}

/** Tokenizer files are missing/malformed, or a text cannot be encoded as asked. */
export class TokenizerError extends BridgeTowerError {
  override readonly exitCode = 7;
}

/** Downloading from the Hub failed, or the cache lacks a file in offline mode. */
export class HubError extends BridgeTowerError {
  override readonly exitCode = 8;
}

/** Bad arguments or inputs given by the caller (CLI flags, tensor shapes, option values). */
export class InputError extends BridgeTowerError {
  override readonly exitCode = 2;
}
