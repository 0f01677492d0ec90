// Reading SentencePiece `.model` files: a serialized `sentencepiece.ModelProto` (proto2).
// The schema is declared here by hand with the field numbers of sentencepiece_model.proto
// (only the fields toxlora needs; unknown fields are skipped by the decoder), then the
// decoded message is turned into a plain typed object with proto2 defaults applied.
import protobuf from "protobufjs";

/** Piece types of `ModelProto.SentencePiece.Type`. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** `TrainerSpec.ModelType`. */
export const SpmModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SpmPiece {
  piece: string;
  score: number;
  type: number;
}

export interface SpmTrainerSpec {
  modelType: number;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  splitDigits: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  unkSurface: string;
}

export interface SpmNormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SpmModel {
  pieces: SpmPiece[];
  trainerSpec: SpmTrainerSpec;
  normalizerSpec: SpmNormalizerSpec;
  /** Present only in some models (used when decoding); `undefined` when absent. */
  denormalizerSpec?: SpmNormalizerSpec;
}

// Field numbers from sentencepiece_model.proto. `edition: "proto2"` keeps field presence, so an
// explicit `false` (e.g. remove_extra_whitespaces) is told apart from an absent field.
const schema: protobuf.INamespace = {
  nested: {
    TrainerSpec: {
      edition: "proto2",
      fields: {
        modelType: { id: 3, type: "int32" },
        vocabSize: { id: 4, type: "int32" },
        splitDigits: { id: 25, type: "bool" },
        treatWhitespaceAsSuffix: { id: 24, type: "bool" },
        byteFallback: { id: 35, type: "bool" },
        unkId: { id: 40, type: "int32" },
        bosId: { id: 41, type: "int32" },
        eosId: { id: 42, type: "int32" },
        padId: { id: 43, type: "int32" },
        unkSurface: { id: 44, type: "string" },
        unkPiece: { id: 45, type: "string" },
        bosPiece: { id: 46, type: "string" },
        eosPiece: { id: 47, type: "string" },
        padPiece: { id: 48, type: "string" },
      },
    },
    NormalizerSpec: {
      edition: "proto2",
      fields: {
        name: { id: 1, type: "string" },
        precompiledCharsmap: { id: 2, type: "bytes" },
        addDummyPrefix: { id: 3, type: "bool" },
        removeExtraWhitespaces: { id: 4, type: "bool" },
        escapeWhitespaces: { id: 5, type: "bool" },
      },
    },
    SentencePiece: {
      edition: "proto2",
      fields: {
        piece: { id: 1, type: "string" },
        score: { id: 2, type: "float" },
        type: { id: 3, type: "int32" },
      },
    },
    ModelProto: {
      edition: "proto2",
      fields: {
        pieces: { id: 1, type: "SentencePiece", rule: "repeated" },
        trainerSpec: { id: 2, type: "TrainerSpec" },
        normalizerSpec: { id: 3, type: "NormalizerSpec" },
        denormalizerSpec: { id: 5, type: "NormalizerSpec" },
      },
    },
  },
};

let modelProtoType: protobuf.Type | undefined;
function modelProto(): protobuf.Type {
  modelProtoType ??= protobuf.Root.fromJSON(schema).lookupType("ModelProto");
  return modelProtoType;
}

type Raw = Record<string, unknown>;

// (absent sub-messages read as null from the decoded message's prototype)
function has(raw: Raw | null | undefined, key: string): boolean {
  return (
    raw !== undefined &&
    raw !== null &&
    Object.hasOwn(raw, key) &&
    raw[key] !== undefined &&
    raw[key] !== null
  );
}
function pick<T>(raw: Raw | null | undefined, key: string, fallback: T): T {
  return has(raw, key) ? (raw?.[key] as T) : fallback;
}

function normalizerSpecFrom(raw: Raw | null | undefined): SpmNormalizerSpec {
  return {
    name: pick(raw, "name", ""),
    precompiledCharsmap: pick(raw, "precompiledCharsmap", new Uint8Array(0)),
    // proto2 defaults from sentencepiece_model.proto
    addDummyPrefix: pick(raw, "addDummyPrefix", true),
    removeExtraWhitespaces: pick(raw, "removeExtraWhitespaces", true),
    escapeWhitespaces: pick(raw, "escapeWhitespaces", true),
  };
}

/** Decodes the bytes of a SentencePiece `.model` file. `file` is only used in error messages. */
export function parseSentencePieceModel(bytes: Uint8Array, file = "<model>"): SpmModel {
  let msg: Raw;
  try {
    msg = modelProto().decode(bytes) as unknown as Raw;
  } catch (err) {
    throw new Error(`${file}: not a SentencePiece model (protobuf decode failed: ${(err as Error).message})`);
  }
  const rawPieces = (msg.pieces as Raw[] | undefined) ?? [];
  if (rawPieces.length === 0) throw new Error(`${file}: SentencePiece model has no pieces (field 1)`);
  const pieces = rawPieces.map((p, i): SpmPiece => {
    const piece = pick(p, "piece", "");
    if (piece === "") throw new Error(`${file}: piece #${i} has an empty 'piece' field`);
    return { piece, score: pick(p, "score", 0), type: pick(p, "type", PieceType.NORMAL) };
  });
  const ts = msg.trainerSpec as Raw | undefined;
  const trainerSpec: SpmTrainerSpec = {
    modelType: pick(ts, "modelType", SpmModelType.UNIGRAM),
    vocabSize: pick(ts, "vocabSize", 8000),
    byteFallback: pick(ts, "byteFallback", false),
    treatWhitespaceAsSuffix: pick(ts, "treatWhitespaceAsSuffix", false),
    splitDigits: pick(ts, "splitDigits", false),
    unkId: pick(ts, "unkId", 0),
    bosId: pick(ts, "bosId", 1),
    eosId: pick(ts, "eosId", 2),
    padId: pick(ts, "padId", -1),
    unkPiece: pick(ts, "unkPiece", "<unk>"),
    bosPiece: pick(ts, "bosPiece", "<s>"),
    eosPiece: pick(ts, "eosPiece", "</s>"),
    padPiece: pick(ts, "padPiece", "<pad>"),
    unkSurface: pick(ts, "unkSurface", " \u2047 "),
  };
  return {
    pieces,
    trainerSpec,
    normalizerSpec: normalizerSpecFrom(msg.normalizerSpec as Raw | undefined),
    denormalizerSpec: has(msg, "denormalizerSpec")
      ? normalizerSpecFrom(msg.denormalizerSpec as Raw)
      : undefined,
  };
}
