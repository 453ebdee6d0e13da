import 'reflect-metadata';
import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Whether the gateway can write where plans put their checkpoints and outputs.' })
export class StorageHealth {
  @Field(() => String, { description: 'Where it stores them: s3://bucket/prefix or file:///dir.' })
  location!: string;

  @Field(() => Boolean, { description: 'A probe object was written and deleted there just now.' })
  writable!: boolean;

  @Field(() => String, { nullable: true, description: 'Why not, when it is not writable.' })
  error!: string | null;
}
