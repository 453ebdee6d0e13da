import 'reflect-metadata';
import { Field, ObjectType } from 'type-graphql';
import { DateTimeScalar, SafeIntScalar } from '../scalars.js';

@ObjectType({ description: "One file of a plan's output in S3, with a pre-signed URL that downloads it without credentials." })
export class OutputDownload {
  @Field(() => String, { description: 'File name inside the output folder, e.g. model.safetensors.' })
  name!: string;

  @Field(() => SafeIntScalar)
  size!: number;

  @Field(() => String, { description: 'Hex sha256 of the file, to check the download.' })
  sha256!: string;

  @Field(() => String, { description: 'A pre-signed GET URL; anyone holding it can download the file until expiresAt, so share it with care.' })
  url!: string;

  @Field(() => DateTimeScalar)
  expiresAt!: Date;
}
