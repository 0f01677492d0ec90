// Label schemas: which field holds the text, which fields are labels, and how a field's value
// becomes 0/1. A schema is plain data (JSON-serialisable), so a training run can store the one it
// used in its config.json and the predictor can read it back.

/** How label field values become 0/1. */
export type LabelValueRule =
  /** Values compared case-insensitively after trimming; booleans and numbers as their text. */
  | { kind: "values"; positive: string[]; negative: string[] }
  /**
   * Annotator vote counts: 1 when at least `minVotes` annotators chose the label; without
   * `minVotes`, when more than half of the row's `annotatorsField` did.
   */
  | { kind: "votes"; annotatorsField: string; minVotes?: number }
  /**
   * Hugging Face style: one field holds the row's labels as a list, either label names
   * (`["obscene", "violent"]`) or a multi-hot vector with one 0/1 per label.
   */
  | { kind: "list"; field: string };

/** How the overall label (LLM-jp's `label`: toxic | nontoxic | has_toxic_expression) is read. */
export type OverallRule =
  /** Read from a field; when `values` is given, other values are errors. */
  | { kind: "field"; field: string; values?: string[] }
  /**
   * Majority vote over vote-count fields, each mapped to an overall value (several fields may map
   * to the same value; their votes add up). A tie between values gives `tie`.
   */
  | { kind: "votes"; levels: { field: string; value: string }[]; tie: string };

export interface LabelField {
  /** The label's name in tables, charts and model outputs. */
  name: string;
  /** The field (JSON key or CSV column) it is read from. */
  field: string;
}

export interface LabelSchema {
  /** Preset name, or "custom". */
  name: string;
  textField: string;
  /** Rows without this field get their line number as id. */
  idField: string;
  labels: LabelField[];
  values: LabelValueRule;
  overall?: OverallRule;
}

export const PRESET_NAMES = ["llmjp-toxicity", "inspection-ai"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const DEFAULT_POSITIVE = ["yes", "1", "true"];
export const DEFAULT_NEGATIVE = ["no", "0", "false"];

/** The seven category fields of the LLM-jp Toxicity Dataset v2, in the prototype's order. */
export const LLMJP_LABELS = [
  "obscene",
  "discriminatory",
  "violent",
  "illegal",
  "personal",
  "corporate",
  "others",
] as const;

export const LLMJP_OVERALL = ["toxic", "nontoxic", "has_toxic_expression"] as const;

/** The seven category columns of inspection-ai/japanese-toxic-dataset (see its schema.md). */
export const INSPECTION_AI_CATEGORIES = [
  "卑語",
  "差別",
  "迷惑行為",
  "猥褻",
  "出会い・プライバシー侵害",
  "違法行為",
  "偏向表現",
] as const;

export function llmjpToxicitySchema(): LabelSchema {
  return {
    name: "llmjp-toxicity",
    textField: "text",
    idField: "id",
    labels: LLMJP_LABELS.map((name) => ({ name, field: name })),
    values: { kind: "values", positive: ["yes"], negative: ["no"] },
    overall: { kind: "field", field: "label", values: [...LLMJP_OVERALL] },
  };
}

/**
 * inspection-ai's subset.csv: per-category vote counts plus `annotation_num`. Its four toxicity
 * levels map onto LLM-jp's overall label (Toxic and Very Toxic both count as `toxic`); a tie
 * means the annotators disagreed, which is what `has_toxic_expression` ("hard to say") stands for.
 */
export function inspectionAiSchema(options: { minVotes?: number } = {}): LabelSchema {
  const { minVotes } = options;
  if (minVotes !== undefined && (!Number.isInteger(minVotes) || minVotes < 1)) {
    throw new Error(`minVotes must be a positive integer, got ${minVotes}`);
  }
  return {
    name: "inspection-ai",
    textField: "text",
    idField: "id",
    labels: INSPECTION_AI_CATEGORIES.map((name) => ({ name, field: `category_${name}` })),
    values: {
      kind: "votes",
      annotatorsField: "annotation_num",
      ...(minVotes === undefined ? {} : { minVotes }),
    },
    overall: {
      kind: "votes",
      levels: [
        { field: "Not Toxic", value: "nontoxic" },
        { field: "Hard to Say", value: "has_toxic_expression" },
        { field: "Toxic", value: "toxic" },
        { field: "Very Toxic", value: "toxic" },
      ],
      tie: "has_toxic_expression",
    },
  };
}

export interface CustomSchemaOptions {
  textField?: string;
  idField?: string;
  /** Label fields (names = field names). */
  labels: string[];
  positive?: string[];
  negative?: string[];
  /** When set, labels come from this one list-valued field instead of one field each. */
  labelsField?: string;
  overallField?: string;
}

export function customSchema(options: CustomSchemaOptions): LabelSchema {
  if (options.labels.length === 0)
    throw new Error("a custom schema needs at least one label (--labels a,b,c)");
  const positive = (options.positive ?? DEFAULT_POSITIVE).map(normaliseValue);
  const negative = (options.negative ?? DEFAULT_NEGATIVE).map(normaliseValue);
  const both = positive.filter((v) => negative.includes(v));
  if (both.length > 0) throw new Error(`value(s) ${both.join(", ")} are both positive and negative`);
  const schema: LabelSchema = {
    name: "custom",
    textField: options.textField ?? "text",
    idField: options.idField ?? "id",
    labels: options.labels.map((name) => ({ name, field: name })),
    values: options.labelsField
      ? { kind: "list", field: options.labelsField }
      : { kind: "values", positive, negative },
  };
  if (options.overallField) schema.overall = { kind: "field", field: options.overallField };
  checkLabelNames(schema);
  return schema;
}

export function presetSchema(name: string, options: { minVotes?: number } = {}): LabelSchema {
  if (name === "llmjp-toxicity") return llmjpToxicitySchema();
  if (name === "inspection-ai") return inspectionAiSchema(options);
  throw new Error(`unknown preset "${name}" (known: ${PRESET_NAMES.join(", ")})`);
}

/** Restricts a schema to some of its labels, in the order given. */
export function selectLabels(schema: LabelSchema, names: string[]): LabelSchema {
  const labels = names.map((n) => {
    const found = schema.labels.find((l) => l.name === n || l.field === n);
    if (!found) {
      throw new Error(
        `label "${n}" is not in schema ${schema.name} (${schema.labels.map((l) => l.name).join(", ")})`,
      );
    }
    return found;
  });
  const out = { ...schema, labels };
  checkLabelNames(out);
  return out;
}

/** Options as the CLI takes them (`--preset`, `--labels`, `--text-field`, ...). */
export interface SchemaOptions {
  preset?: string;
  labels?: string[];
  textField?: string;
  idField?: string;
  positive?: string[];
  negative?: string[];
  labelsField?: string;
  overallField?: string;
  minVotes?: number;
}

/**
 * Builds the schema the options describe: a preset (optionally restricted with `labels`), or a
 * custom schema when `labels` is given without a preset; `llmjp-toxicity` when nothing is given.
 */
export function schemaFromOptions(options: SchemaOptions): LabelSchema {
  const custom =
    options.textField !== undefined ||
    options.idField !== undefined ||
    options.positive !== undefined ||
    options.negative !== undefined ||
    options.labelsField !== undefined ||
    options.overallField !== undefined;
  if (options.preset === undefined && (options.labels !== undefined || custom)) {
    return customSchema({ ...options, labels: options.labels ?? [] });
  }
  if (options.preset !== undefined && custom) {
    throw new Error(
      "--preset cannot be combined with --text-field/--id-field/--positive/--negative/... flags",
    );
  }
  if (options.minVotes !== undefined && options.preset !== "inspection-ai") {
    throw new Error("--min-votes applies to the inspection-ai preset only");
  }
  const schema = presetSchema(options.preset ?? "llmjp-toxicity", { minVotes: options.minVotes });
  return options.labels ? selectLabels(schema, options.labels) : schema;
}

function checkLabelNames(schema: LabelSchema): void {
  const seen = new Set<string>();
  for (const l of schema.labels) {
    if (seen.has(l.name)) throw new Error(`label "${l.name}" is listed twice`);
    seen.add(l.name);
  }
}

/**
 * Whether a list-valued label field is a multi-hot vector (one 0/1 per schema label) rather than a
 * list of label names. Reading and writing must agree on this, so both ask here.
 */
export function isMultiHot(list: unknown, labelCount: number): list is number[] {
  return Array.isArray(list) && list.length === labelCount && list.every((x) => x === 0 || x === 1);
}

/** How a raw value is compared against the positive/negative lists. */
export function normaliseValue(v: unknown): string {
  return String(v).trim().toLowerCase();
}
