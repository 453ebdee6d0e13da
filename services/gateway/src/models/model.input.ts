import 'reflect-metadata';
import { Field, InputType } from 'type-graphql';

@InputType()
export class RegisterModelInput {
  @Field(() => String)
  name!: string;

  @Field(() => String, {
    description:
      'file:///absolute/path to a Hugging Face folder, its config.json, or a llama2.c .bin; s3://bucket/prefix/ or hf://org/name[@revision] for a Hugging Face folder in object storage (inspected without downloading its weights).',
  })
  source!: string;

  @Field(() => String, { nullable: true, description: 'Tokenizer location (file:// or s3://) when it is not beside the weights (e.g. a llama2.c tokenizer .bin).' })
  tokenizer?: string | null;
}
