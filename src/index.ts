// The toxlora library API. Everything the CLI does is importable from here.
export { VERSION } from "./version.js";
export * from "./sources/import.js";
export * from "./sources/normalize.js";
export * from "./sources/query.js";
export * from "./sources/score.js";
export * from "./sources/tweet.js";
export * from "./sources/x-api.js";
