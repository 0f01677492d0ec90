// The toxlora library API. Everything the CLI does is importable from here.
export { VERSION } from "./version.js";
