import 'reflect-metadata';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ErrorCode } from '../errors.js';
import { DateTimeScalar, SafeIntScalar } from '../scalars.js';

export enum ModelStatus {
  PENDING = 'PENDING',
  READY = 'READY',
  FAILED = 'FAILED',
}
registerEnumType(ModelStatus, { name: 'ModelStatus' });

/** What the engine's inspection found, kept beside the model to validate plans against it. */
export interface ModelInspection {
  readonly format: string;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  readonly dtype: string;
  /** Set when the model is a plan's output registered with `fromPlan`: that plan's id (its source is trusted). */
  readonly fromPlan?: string;
}

@ObjectType({ description: 'A registered model: where its weights are and what the engine found in its config.' })
export class Model {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String, { description: 'Where the weights live: file:// path, s3://bucket/prefix, or hf://org/name[@revision].' })
  source!: string;

  @Field(() => String, { nullable: true, description: 'Tokenizer location when it is not beside the weights.' })
  tokenizer!: string | null;

  @Field(() => ModelStatus)
  status!: ModelStatus;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => ErrorCode, {
    nullable: true,
    description: 'The error code of a FAILED model, e.g. INVALID_WEIGHTS (a tensor holds NaN or infinite values: plans on it are refused with this code).',
  })
  errorCode!: ErrorCode | null;

  @Field(() => String, { nullable: true, description: 'Hugging Face model_type, e.g. llama, mistral, qwen2, opt.' })
  architecture!: string | null;

  @Field(() => Int, { nullable: true })
  numLayers!: number | null;

  @Field(() => Int, { nullable: true })
  hiddenSize!: number | null;

  @Field(() => SafeIntScalar, { nullable: true })
  numParameters!: number | null;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  inspection!: ModelInspection | null;

  /** The owning tenant (not exposed: a tenant only ever sees its own). */
  tenantId!: string;
}
