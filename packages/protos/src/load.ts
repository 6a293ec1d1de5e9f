// Loads protos/hostgate/v1 once: the grpc-js package definition (services) and the protobufjs
// root (Kafka payload codecs), with the same conversion options so both give the same objects.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { ProtoGrpcType } from './gen/hostgate.ts';

/** protos/ at the repository root (the .proto files are read at run time). */
export const PROTOS_DIR: string = path.resolve(import.meta.dirname, '../../../protos');

/** The HostGate .proto files, relative to PROTOS_DIR. */
export const PROTO_FILES: readonly string[] = Object.freeze(
  readdirSync(path.join(PROTOS_DIR, 'hostgate/v1'))
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `hostgate/v1/${f}`),
);

/**
 * Conversion options, shared by gRPC and the Kafka codecs (and by the type generator):
 * field names camelCase; 64-bit integers as decimal strings (uint64 clock and int64 offsets do
 * not fit a double); enums as their names; bytes as Buffer; unset scalars, repeated and map
 * fields filled with defaults; the name of the set member of each oneof in a virtual field.
 */
export const PROTO_LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
} satisfies protoLoader.Options);

type V1 = ProtoGrpcType['hostgate']['v1'];

/** Fully qualified service names (gRPC paths, grpc.health.v1 service names). */
export const SERVICE_NAMES = Object.freeze({
  quoteCollector: 'hostgate.v1.QuoteCollectorService',
  eventlogReplayer: 'hostgate.v1.EventlogReplayerService',
  policyEvaluator: 'hostgate.v1.PolicyEvaluatorService',
  healthCertIssuer: 'hostgate.v1.HealthCertIssuerService',
} as const);

export interface HostgateProtos {
  /** For grpc.loadPackageDefinition, reflection, or a server's addService. */
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** The whole hostgate.v1 package as grpc-js loaded it. */
  readonly grpcObject: ProtoGrpcType;
  /** Client constructor; `.service` is the definition for `server.addService`. */
  readonly QuoteCollectorService: V1['QuoteCollectorService'];
  readonly EventlogReplayerService: V1['EventlogReplayerService'];
  readonly PolicyEvaluatorService: V1['PolicyEvaluatorService'];
  readonly HealthCertIssuerService: V1['HealthCertIssuerService'];
}

let loaded: HostgateProtos | undefined;

/** The HostGate gRPC package, loaded on first call and shared after. */
export function loadHostgateProtos(): HostgateProtos {
  if (loaded !== undefined) return loaded;
  const packageDefinition = protoLoader.loadSync([...PROTO_FILES], { ...PROTO_LOADER_OPTIONS });
  const grpcObject = grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;
  const v1 = grpcObject.hostgate.v1;
  loaded = Object.freeze({
    packageDefinition,
    grpcObject,
    QuoteCollectorService: v1.QuoteCollectorService,
    EventlogReplayerService: v1.EventlogReplayerService,
    PolicyEvaluatorService: v1.PolicyEvaluatorService,
    HealthCertIssuerService: v1.HealthCertIssuerService,
  });
  return loaded;
}

let root: protobuf.Root | undefined;

/** The protobufjs root of hostgate.v1 (same files and field-name option as loadHostgateProtos). */
export function hostgateRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const r = new protobuf.Root();
  // Imports resolve under protos/; google/protobuf/* come bundled with protobufjs.
  r.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? target : path.join(PROTOS_DIR, target);
  r.loadSync([...PROTO_FILES], { keepCase: false });
  r.resolveAll();
  root = r;
  return r;
}
