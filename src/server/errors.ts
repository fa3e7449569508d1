/** Every error the server answers is `{"error": {"type", "message"}}` with one of these statuses; never a stack. */
import { BridgeTowerError, ImageError, InputError, TokenizerError, UnsupportedCheckpointError } from "../index.js";
import { QueueFullError } from "./batcher.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, "invalid_request", message);
export const unprocessable = (message: string) => new HttpError(422, "invalid_input", message);
export const tooLarge = (message: string) => new HttpError(413, "payload_too_large", message);

const TYPE_OF_STATUS: Record<number, string> = {
  400: "invalid_request",
  401: "unauthorized",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "invalid_input",
  429: "queue_full",
  503: "unavailable",
};

/** The status and body for any error thrown while handling a request. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError)
    return new HttpError(429, "queue_full", "the server is at capacity: retry after a moment", { "retry-after": "1" });
  // Library errors from checked inputs: the message names the input, not a file on the server.
  if (e instanceof ImageError || e instanceof TokenizerError) return unprocessable(e.message);
  if (e instanceof UnsupportedCheckpointError) return new HttpError(400, "unsupported_by_model", e.message);
  if (e instanceof InputError) return badRequest(e.message);
  // Fastify's own errors (malformed JSON, body too large, content type) carry a 4xx status and a safe message.
  const status = (e as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500 && !(e instanceof BridgeTowerError)) {
    const message = status === 415 ? "the body must be JSON (Content-Type: application/json)" : String((e as Error).message);
    return new HttpError(status, TYPE_OF_STATUS[status] ?? "invalid_request", message);
  }
  return new HttpError(500, "internal_error", "internal error");
}

export function errorBody(e: HttpError): { error: { type: string; message: string } } {
  return { error: { type: e.type, message: e.message } };
}
