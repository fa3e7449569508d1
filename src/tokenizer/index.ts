export { RobertaTokenizer, cleanUpTokenization, type DecodeOptions } from "./roberta.js";
export type { EncodeOptions, Encoding } from "./options.js";
