export { rankTexts, rankImages, matchOneToMany, type MatchScore, type TextMatch, type RankOptions } from "./rank.js";
export { fillMask, fillMaskFromLogits, type FillMaskResult, type MaskCandidate } from "./fill-mask.js";
export { cosine, embed, type Embeddings } from "./embed.js";
