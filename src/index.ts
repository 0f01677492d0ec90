// The toxlora library API. Everything the CLI does is importable from here.

export * from "./data/index.js";
export {
  BASE_CONFIG,
  type BarChartOptions,
  type BarDatum,
  barChart,
  type HeatCell,
  type HeatmapOptions,
  type HistogramOptions,
  heatmapChart,
  histogramChart,
  type LineChartOptions,
  type LinePoint,
  lineChart,
  type QuantileChartOptions,
  type QuantileRow,
  quantileChart,
  type RasterImage,
  type RenderedChart,
  type RenderOptions,
  rasterizeSvg,
  renderChart,
  renderSvg,
  type VegaLiteSpec,
  writeChart,
} from "./report/charts.js";
export { CHART_FONT_FAMILY, japaneseFontFiles, measureText } from "./report/fonts.js";
export {
  detectFormat,
  type ImportFormat,
  type ImportOptions,
  type ImportResult,
  importTweets,
  readTweetFile,
} from "./sources/import.js";
export { normalizeTweetText, URL_PLACEHOLDER, USER_PLACEHOLDER } from "./sources/normalize.js";
export { buildSearchQuery, QUERY_PRESETS, type QueryOptions } from "./sources/query.js";
export {
  formatScoreSummary,
  type ScoredTweet,
  type ScoreOptions,
  type ScoreSummary,
  scoreTweets,
  type TopExample,
} from "./sources/score.js";
export {
  type PublicMetrics,
  parseTweetTime,
  TweetInputError,
  type TweetRecord,
  type TweetSource,
  toTweetRecord,
} from "./sources/tweet.js";
export {
  DEFAULT_BASE_URL,
  type FetchState,
  type FetchStop,
  type FetchTweetsOptions,
  type FetchTweetsResult,
  fetchTweets,
  stateFileFor,
  TWEET_FIELDS,
  XApiError,
  type XApiErrorKind,
} from "./sources/x-api.js";
export { VERSION } from "./version.js";
