// The toxlora library API. Everything the CLI does is importable from here.

// The tfidf-lr baseline: character n-gram TF-IDF + logistic regression (train({ model: "tfidf-lr" })).
export { BASELINE_MODEL_DIR, TfidfClassifier } from "./baseline/classifier.js";
export {
  BASELINE_MODEL,
  type BaselineConfig,
  type BaselineConfigInput,
  BaselineConfigSchema,
  type BaseOnlyOptions,
  isBaselineModel,
  refuseBaseOptions,
  resolveBaselineConfig,
} from "./baseline/config.js";
export { DEFAULT_LBFGS, type LbfgsOptions, type LbfgsResult, minimizeLbfgs } from "./baseline/lbfgs.js";
export {
  balancedClassWeights,
  fitLogistic,
  type LogisticFit,
  type LogisticOptions,
  logisticLossGrad,
  predictLogistic,
} from "./baseline/logistic.js";
export {
  DEFAULT_TFIDF_LR,
  fitTfidfLr,
  type LabelFit,
  loadTfidfLr,
  saveTfidfLr,
  TFIDF_LR_FILES,
  TfidfLrModel,
  type TfidfLrOptions,
} from "./baseline/model.js";
export { type CsrMatrix, selectRows } from "./baseline/sparse.js";
export {
  analyzeText,
  charNgrams,
  DEFAULT_TFIDF,
  type TfidfModel,
  type TfidfOptions,
  TfidfVectorizer,
} from "./baseline/tfidf.js";
export { trainBaseline } from "./baseline/trainer.js";
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
} from "./charts/charts.js";
export { CHART_FONT_FAMILY, japaneseFontFiles, measureText } from "./charts/fonts.js";
// Scoring on a Redis-backed queue (BullMQ): workers, the coordinator, their Redis connection.
export {
  ChunkFailedError,
  type ClusterProgress,
  type QueueScoringOptions,
  scoreOnQueue,
} from "./cluster/coordinator.js";
export { runFingerprint } from "./cluster/fingerprint.js";
export {
  type ChunkJob,
  type ChunkResult,
  jobNamespace,
  type QuantSpec,
  quantSpec,
  queueName,
} from "./cluster/jobs.js";
export {
  predictFileOnQueue,
  type QueuePredictOptions,
  queueClassifierIdentity,
} from "./cluster/predict.js";
export { checkRedis, parseRedisUrl, type RedisTarget, redact } from "./cluster/redis.js";
export { type RunningWorker, startWorker, type WorkerOptions } from "./cluster/worker.js";
export * from "./data/index.js";
// Training workflow: train, evaluate, predict, export, demo.
export * from "./demo/data.js";
export { type DemoOptions, type DemoResult, runDemo } from "./demo/run.js";
export * as engine from "./engine/index.js";
export {
  type AttributeOptions,
  type Attribution,
  type AttributionMethod,
  Attributor,
  type AttributorOptions,
  gaussLegendre,
  type IntegrationRule,
} from "./explain/attribute.js";
export {
  type Explainable,
  type ExplainedSpan,
  ExplainInputError,
  type ExplainOptions,
  type Explanation,
  explain,
  isExplainable,
} from "./explain/explain.js";
export {
  type BaseModelConfig,
  type BertConfig,
  type HfModelConfig,
  type LlamaConfig,
  type ModelFamily,
  type ModernBertConfig,
  type ModernBertLayerType,
  parseHfConfig,
  type RopeScaling,
  readHfConfig,
  SUPPORTED_MODEL_TYPES,
} from "./io/hf-config.js";
export {
  DEFAULT_HF_ENDPOINT,
  type DownloadProgress,
  hubCacheDir,
  isHubId,
  isModelFile,
  type ResolveModelOptions,
  resolveModel,
} from "./io/hub.js";
export {
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  type AdapterKey,
  type AdapterKeyKind,
  ALL_LINEAR,
  BASE_MODEL_PREFIX,
  isAllLinear,
  isLoraTarget,
  isModuleToSave,
  isSavedParam,
  type LoraAdapter,
  type LoraAdapterConfig,
  type LoraPair,
  loraAlpha,
  loraConfig,
  loraKey,
  loraRank,
  loraScaling,
  matchesTargetModules,
  PEFT_PREFIX,
  parseAdapterKey,
  parseLoraConfig,
  readAdapter,
  savedParamKey,
  writeAdapter,
} from "./io/peft.js";
export {
  bf16BitsToF32,
  type F32Tensor,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  openCheckpoint,
  openSafetensors,
  readSafetensors,
  SAFETENSORS_INDEX_NAME,
  SAFETENSORS_WEIGHTS_NAME,
  type SafetensorsDtype,
  type TensorData,
  type TensorInfo,
  type TensorProducer,
  type TensorSource,
  type TensorToWrite,
  type WriteSafetensorsOptions,
  writeSafetensors,
} from "./io/safetensors.js";
export * from "./label/alpha.js";
export { MIGRATIONS, openDb } from "./label/db.js";
export * from "./label/export.js";
export * from "./label/plan.js";
export { planCandidates, runKey, scorePool } from "./label/score.js";
export { createLabelServer, type LabelServerOptions, type RunningLabelServer } from "./label/server.js";
export * from "./label/stats.js";
export * from "./label/store.js";
export type { HeadKind, HeadSpec } from "./models/heads.js";
export {
  type ForwardInput,
  type ForwardOutput,
  type LoadModelOptions,
  loadModel,
  type Model,
  type OutputTensor,
  type SaveAdapterOptions,
  saveAdapter,
} from "./models/model.js";
export {
  checkpointHash,
  type HashProgress,
  readQuantizedWeights,
  toxloraCacheDir,
} from "./models/quantized-load.js";
export { type RandomCheckpointOptions, writeRandomCheckpoint } from "./models/random-checkpoint.js";
export {
  backbonePrefix,
  buildClassifier,
  type ClassifierGraph,
  type ClassifierOptions,
  detectHead,
  HEAD_WEIGHTS_NAME,
  type LoadedCheckpoint,
  loadCheckpoint,
  PREPACK_LIMIT_BYTES,
  sessionOptionsFor,
} from "./models/registry.js";
export { type SyntheticSpec, writeSyntheticCheckpoint } from "./models/synthetic.js";
export { readWeights, WeightMap, type WeightSource } from "./models/weights.js";
export {
  type LoadClassifierOptions,
  loadClassifier,
  RunClassifier,
  type RunConfig,
  readRunConfig,
  readThresholds,
} from "./predict/classifier.js";
export { type EvaluateRunResult, evaluateRun } from "./predict/evaluate.js";
export {
  EXPORT_QUANT_KERNELS,
  type ExportOptions,
  type ExportQuantKernel,
  type ExportResult,
  exportOnnx,
} from "./predict/export.js";
export * from "./predict/io.js";
export {
  PREDICT_BLOCK,
  type PredictFileOptions,
  type PredictFileResult,
  type PredictInput,
  predictFile,
  predictionRows,
  scoreAligned,
} from "./predict/predict.js";
export {
  type BlockQuantized,
  type Blockwise8Quantized,
  type CompressedAbsmax,
  compressAbsmax,
  DOUBLE_QUANT_BLOCK_SIZE,
  DYNAMIC_MAP_8BIT,
  decompressAbsmax,
  dequantizeBlockwise8,
  dequantizeInt4,
  dequantizeInt8,
  dequantizeNf4,
  dequantizeNf4Double,
  meanF32,
  NF4_LEVELS,
  type Nf4DoubleQuantized,
  type Nf4Quantized,
  quantizeBlockwise8,
  quantizeInt4,
  quantizeInt8,
  quantizeNf4,
  quantizeNf4Double,
} from "./quant/codecs.js";
export {
  type QGemmAttrs,
  type QGemmWeight,
  qgemmCodes,
  qgemmDequantize,
  qgemmFromFloat,
  qgemmFromInt4,
} from "./quant/qgemm.js";
export {
  DEFAULT_BLOCK_SIZE,
  dequantizeWeight,
  parseQuantScheme,
  QUANT_SCHEMES,
  type QuantizedTensor,
  type QuantizeOptions,
  type QuantLoadOptions,
  type QuantScheme,
  quantizeWeight,
} from "./quant/weights.js";
export {
  type CompareRunsOptions,
  comparePredictions,
  compareRuns,
  formatComparison,
  type RunComparison,
} from "./report/compare-runs.js";
export { buildCvReport } from "./report/cv-report.js";
export {
  buildComparison,
  buildReport,
  type ComparedRun,
  type ReportOptions,
} from "./report/report.js";
export { type RunData, readPredictionsFile, readRun } from "./report/run.js";
export * from "./run/batching.js";
export * from "./run/bootstrap.js";
export {
  resolveTrainConfig,
  type TrainConfig,
  type TrainConfigInput,
  TrainConfigSchema,
} from "./run/config.js";
export { type DataManifest, type PreparedData, prepareData } from "./run/data.js";
export { evaluateSplit } from "./run/eval-files.js";
export {
  type CheckedSplit,
  CONSTANT_LOGIT_SPREAD,
  type DegenerateLabel,
  degenerateLabels,
  type SplitCheck,
} from "./run/label-checks.js";
export * from "./run/metrics.js";
export { decide, type ScoredFields, scoredFields } from "./run/output.js";
export { hashProgress, type ProgressMode } from "./run/progress.js";
export {
  type BaseQuantization,
  type Classifier,
  type PredictOptions,
  RUN_FILES,
  type Scored,
  type TrainedClassifier,
} from "./run/types.js";
export { type BatcherOptions, type BatcherStats, MicroBatcher } from "./serve/batcher.js";
export { createServer, HttpError, type RunningServer, type ServeOptions } from "./serve/server.js";
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
export {
  buildCharTokenizer,
  type CharTokenizerOptions,
  type CharTokenizerResult,
} from "./tokenizers/build.js";
export {
  alignTokens,
  mergeSpans,
  type Span,
  type TokenGroup,
  type TokenSurface,
} from "./tokenizers/offsets.js";
export {
  type BatchEncoding,
  type BatchOptions,
  type DecodeOptions,
  type EncodeOptions,
  loadTokenizer,
  type OffsetEncoding,
  type Tokenizer,
  tokenizerFromJson,
  tokenizerFromSentencePiece,
} from "./tokenizers/tokenizer.js";
export * from "./train/compare.js";
export * from "./train/cv.js";
export * from "./train/schedules.js";
export { defaultRunDir, type TrainOptions, type TrainResult, train } from "./train/trainer.js";
export { VERSION } from "./version.js";
