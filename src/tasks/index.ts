export { rankTexts, rankImages, type MatchScore, type TextMatch, type RankOptions } from "./rank.js";
export { fillMask, type FillMaskResult, type MaskCandidate } from "./fill-mask.js";
export { embed, type Embeddings } from "./embed.js";
