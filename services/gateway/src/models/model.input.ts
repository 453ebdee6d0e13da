import 'reflect-metadata';
import { Field, ID, InputType } from 'type-graphql';

@InputType()
export class RegisterModelInput {
  @Field(() => String)
  name!: string;

  @Field(() => String, {
    nullable: true,
    description:
      'file:///absolute/path (under the gateway\'s STREAMLINE_FILE_ROOTS) to a Hugging Face folder, its config.json, or a llama2.c .bin; s3://bucket/prefix/ (under STREAMLINE_S3_SOURCES) or hf://org/name[@revision] (with STREAMLINE_HF=on) for a Hugging Face folder in object storage (inspected without downloading its weights). Exactly one of source and fromPlan.',
  })
  source?: string | null;

  @Field(() => ID, {
    nullable: true,
    description: "A SUCCEEDED plan of the caller's tenant whose pruned output becomes this model (wherever the gateway stores outputs). Exactly one of source and fromPlan.",
  })
  fromPlan?: string | null;

  @Field(() => String, { nullable: true, description: 'Tokenizer location (file:// or s3://) when it is not beside the weights (e.g. a llama2.c tokenizer .bin).' })
  tokenizer?: string | null;
}
