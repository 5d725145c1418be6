import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/**
 * The part of the OTLP protobuf schema these tests read, written from the field numbers in
 * opentelemetry-proto; unknown fields are skipped on decode, so a subset is enough.
 */
const SCHEMA = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Scope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
  repeated KeyValue attributes = 9;
}
message ScopeSpans { Scope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message NumberDataPoint { double as_double = 4; sfixed64 as_int = 6; repeated KeyValue attributes = 7; }
message Sum { repeated NumberDataPoint data_points = 1; }
message Metric { string name = 1; Sum sum = 7; }
message ScopeMetrics { Scope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: false }).root;
const TraceRequest = root.lookupType('otlp.ExportTraceServiceRequest');
const MetricsRequest = root.lookupType('otlp.ExportMetricsServiceRequest');

export interface ReceivedRequest {
  method: string;
  path: string;
  contentType: string;
  body: Buffer;
}

export interface ReceivedSpan {
  service: string | undefined;
  scope: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
}

export interface ReceivedPoint {
  service: string | undefined;
  metric: string;
  value: number;
  attributes: Record<string, unknown>;
}

/** Either encoding, decoded to plain objects with camelCase names (protobuf ids as bytes). */
interface KeyValueMessage {
  key: string;
  value?: Record<string, unknown>;
}

/**
 * A local OTLP/HTTP receiver, as a collector would be: accepts POST /v1/traces and /v1/metrics
 * (or any path) in protobuf or JSON, answers 200, and decodes what it got.
 */
export class OtlpReceiver {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** Every request, in the order they came. */
    readonly requests: ReceivedRequest[],
  ) {}

  /** Listens on 127.0.0.1, on `port` (0: any free one). */
  static async start(port = 0): Promise<OtlpReceiver> {
    const requests: ReceivedRequest[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const contentType = request.headers['content-type'] ?? '';
        requests.push({
          method: request.method ?? '',
          path: request.url ?? '',
          contentType,
          body: Buffer.concat(chunks),
        });
        const json = contentType.startsWith('application/json');
        response.writeHead(200, { 'content-type': json ? 'application/json' : contentType });
        response.end(json ? '{}' : undefined);
      });
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const { port: bound } = server.address() as AddressInfo;
    return new OtlpReceiver(server, `http://127.0.0.1:${bound}`, requests);
  }

  /** Every span received at `path`, from every request there. */
  spans(path = '/v1/traces'): ReceivedSpan[] {
    return this.at(path).flatMap((request) => {
      const decoded = decode(request, TraceRequest) as {
        resourceSpans?: Array<{
          resource?: { attributes?: KeyValueMessage[] };
          scopeSpans?: Array<{
            scope?: { name?: string };
            spans?: Array<Record<string, unknown> & { attributes?: KeyValueMessage[] }>;
          }>;
        }>;
      };
      return (decoded.resourceSpans ?? []).flatMap((resourceSpans) => {
        const service = attributes(resourceSpans.resource?.attributes)['service.name'] as
          | string
          | undefined;
        return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
          (scopeSpans.spans ?? []).map((span) => ({
            service,
            scope: scopeSpans.scope?.name ?? '',
            name: String(span.name),
            traceId: id(span.traceId),
            spanId: id(span.spanId),
            parentSpanId: id(span.parentSpanId),
            attributes: attributes(span.attributes),
          })),
        );
      });
    });
  }

  /** Every sum data point received at `path`. */
  sumPoints(path = '/v1/metrics'): ReceivedPoint[] {
    return this.at(path).flatMap((request) => {
      const decoded = decode(request, MetricsRequest) as {
        resourceMetrics?: Array<{
          resource?: { attributes?: KeyValueMessage[] };
          scopeMetrics?: Array<{
            metrics?: Array<{
              name: string;
              sum?: {
                dataPoints?: Array<{
                  asDouble?: number;
                  asInt?: number | string;
                  attributes?: KeyValueMessage[];
                }>;
              };
            }>;
          }>;
        }>;
      };
      return (decoded.resourceMetrics ?? []).flatMap((resourceMetrics) => {
        const service = attributes(resourceMetrics.resource?.attributes)['service.name'] as
          | string
          | undefined;
        return (resourceMetrics.scopeMetrics ?? []).flatMap((scope) =>
          (scope.metrics ?? []).flatMap((metric) =>
            (metric.sum?.dataPoints ?? []).map((point) => ({
              service,
              metric: metric.name,
              value: Number(point.asInt ?? point.asDouble ?? Number.NaN),
              attributes: attributes(point.attributes),
            })),
          ),
        );
      });
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private at(path: string): ReceivedRequest[] {
    return this.requests.filter((request) => request.path === path && request.method === 'POST');
  }
}

function decode(request: ReceivedRequest, type: protobuf.Type): unknown {
  if (request.contentType.startsWith('application/json')) {
    return JSON.parse(request.body.toString('utf-8'));
  }
  if (request.contentType !== 'application/x-protobuf') {
    throw new Error(`unexpected content type ${request.contentType}`);
  }
  return type.toObject(type.decode(request.body), { longs: Number, bytes: Array });
}

/** A span or trace id as hex: bytes in protobuf, already hex in OTLP/JSON. */
function id(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return Buffer.from(value as number[]).toString('hex');
}

function attributes(list: KeyValueMessage[] | undefined): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    if (value === undefined) continue;
    const [first] = Object.values(value);
    result[key] = first;
  }
  return result;
}
