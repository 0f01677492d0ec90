// The dataset toolkit's public API (re-exported from src/index.ts).
export { analysisChartSpecs, writeAnalysisCharts } from "./analysis-charts.js";
export {
  type AnalysisResult,
  analysisTables,
  analyze,
  formatAnalysisCsv,
  formatAnalysisMarkdown,
  formatAnalysisText,
  type LabelStats,
  type LengthStats,
  lengthStats,
  quantile,
  rateLines,
  rateLinesAmongAny,
  textLength,
} from "./analyze.js";
export {
  type BalanceOptions,
  type BalanceResult,
  type BalanceStep,
  balance,
  PROTOTYPE_STEPS,
  parseStrategy,
  STRATEGY_NAMES,
  type StepReport,
  stepToString,
} from "./balance.js";
export { DataError, type DataErrorInfo } from "./errors.js";
export {
  type Cell,
  formatHistogram,
  formatRateLine,
  percent,
  pyFixed,
  pyRepr,
  renderCsvTable,
  renderMarkdownTable,
  renderTextTable,
  type Table,
} from "./format.js";
export {
  type DataRecord,
  type Dataset,
  decodeRow,
  decodeRows,
  type LoadOptions,
  loadDataset,
} from "./load.js";
export { createRng, deriveSeed, type Rng } from "./random.js";
export {
  type DataFormat,
  detectDataFormat,
  parseDelimited,
  parseJsonDocument,
  parseJsonLines,
  parseRows,
  type RawRow,
  type ReadResult,
  readRows,
} from "./readers.js";
export {
  type CustomSchemaOptions,
  customSchema,
  INSPECTION_AI_CATEGORIES,
  inspectionAiSchema,
  type LabelField,
  type LabelSchema,
  type LabelValueRule,
  LLMJP_LABELS,
  LLMJP_OVERALL,
  llmjpToxicitySchema,
  type OverallRule,
  PRESET_NAMES,
  type PresetName,
  presetSchema,
  type SchemaOptions,
  schemaFromOptions,
  selectLabels,
} from "./schema.js";
export {
  iterativeStratification,
  SPLIT_NAMES,
  type SplitName,
  type SplitOptions,
  type SplitResult,
  split,
  splitRateTable,
  splitSizes,
} from "./split.js";
export { outputRow, toJsonl, writeRecordsJsonl } from "./write.js";
