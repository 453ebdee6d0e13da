/**
 * A small builder for ONNX graphs, over onnx-proto's generated protobuf classes. Node outputs get unique
 * names; initializers carry float32 weights either inline (raw_data) or as external data in a side file.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const DOUBLE = onnx.TensorProto.DataType.DOUBLE;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;

/** Element types of graph inputs, outputs and scalars (float16: narrow weights fed as stored; double: the float64 gradient checks). */
export type ElemType = 'float' | 'float16' | 'double' | 'int64';
const ELEM_TYPES = { float: FLOAT, float16: FLOAT16, double: DOUBLE, int64: INT64 } as const;

export type Dim = number | string;

export interface ExternalWeights {
  /** File name beside the .onnx file. */
  readonly location: string;
  /** Called with each initializer's bytes in order; returns the offset they were written at. */
  write(bytes: Uint8Array): number;
}

export class OnnxGraph {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private counter = 0;
  private readonly int64Constants = new Map<string, string>();

  constructor(private readonly external: ExternalWeights | null = null) {}

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, ELEM_TYPES[elemType], dims));
    return name;
  }

  output(value: string, name: string, dims: Dim[], elemType: ElemType = 'float'): void {
    this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}_identity` });
    this.outputs.push(valueInfo(name, ELEM_TYPES[elemType], dims));
  }

  /** A float32 initializer (copied or written out now, so the caller may drop `data`). */
  weight(name: string, dims: number[], data: Float32Array): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (this.external) {
      const offset = this.external.write(bytes);
      this.initializers.push({
        name,
        dims,
        dataType: FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: this.external.location },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(bytes.byteLength) },
        ],
      });
    } else {
      this.initializers.push({ name, dims, dataType: FLOAT, rawData: bytes.slice() });
    }
    return name;
  }

  /** An int64 constant tensor (shapes, axes), shared between nodes that use the same values. */
  int64(values: number[]): string {
    const key = values.join(',');
    let name = this.int64Constants.get(key);
    if (!name) {
      name = `const_i64_${this.int64Constants.size}`;
      this.initializers.push({ name, dims: [values.length], dataType: INT64, int64Data: values });
      this.int64Constants.set(key, name);
    }
    return name;
  }

  scalar(value: number, elemType: 'float' | 'double' = 'float'): string {
    const name = `const_${elemType === 'float' ? 'f32' : 'f64'}_${this.counter++}`;
    this.initializers.push(elemType === 'float' ? { name, dims: [], dataType: FLOAT, floatData: [value] } : { name, dims: [], dataType: DOUBLE, doubleData: [value] });
    return name;
  }

  /** Adds a node and returns the name of its (first) output. */
  op(opType: string, inputs: string[], attributes: Record<string, number | number[] | string> = {}, outputCount = 1, domain = ''): string {
    const names = this.opMulti(opType, inputs, attributes, outputCount, domain);
    return names[0];
  }

  opMulti(opType: string, inputs: string[], attributes: Record<string, number | number[] | string> = {}, outputCount = 1, domain = ''): string[] {
    const id = this.counter++;
    const output = Array.from({ length: outputCount }, (_, i) => `${opType.toLowerCase()}_${id}_${i}`);
    this.nodes.push({ opType, input: inputs, output, name: `${opType}_${id}`, domain, attribute: Object.entries(attributes).map(([n, v]) => attribute(n, v)) });
    return output;
  }

  encode(name: string, opset: number): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'streamline',
      opsetImport: [{ domain: '', version: opset }, { domain: 'com.microsoft', version: 1 }],
      graph: { name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attribute(name: string, value: number | number[] | string): OnnxTypes.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (Number.isInteger(value) && name !== 'epsilon' && name !== 'alpha') return { name, type: AttributeType.INT, i: value };
  return { name, type: AttributeType.FLOAT, f: value };
}
