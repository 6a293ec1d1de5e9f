// hostgate host: what schedulers and operators ask the health-cert-issuer about a host.
//   check ID   exit 0 healthy, 1 unhealthy (or the issuer could not say), 2 usage
//   watch      one JSON line per fleet change (WatchFleet), snapshot first
//   revoke ID  operators: revoke every live certificate of the host (audited)
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  type CheckHostResponse__Output,
  dateFromTimestamp,
  type HostStatus__Output,
  type RevokeHostResponse__Output,
  type WatchFleetResponse__Output,
} from '@hostgate/protos';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';
import { createServiceClient, deadline, describeGrpcError, serviceAddress, unary } from '../grpc-client.ts';

const USAGE = `usage: hostgate host check ID [--json] [--server ADDR]
       hostgate host watch [ID...] [--no-snapshot] [--server ADDR]
       hostgate host revoke ID --reason TEXT [--operator NAME] [--token TOKEN] [--server ADDR]

  check   Is the host healthy now (holds a valid, unrevoked health certificate)?
          Exit 0 healthy, 1 unhealthy or the issuer could not be asked, 2 usage.
          --json prints the status as one JSON object.
  watch   The fleet's health as it changes, one JSON object per line: the current
          state of every (given) host first, then each change as it happens.
  revoke  Revoke every live certificate of the host (operators; audited). The admin
          token comes from --token or HOSTGATE_ADMIN_TOKEN; the operator named in the
          audit log from --operator, HOSTGATE_OPERATOR or the login name.

  --server ADDR   health-cert-issuer address (default: HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS
                  or 127.0.0.1:50054, what npm start opens)`;

const HOST_ID = /^[\x21-\x7e]{1,128}$/;

function iso(ts: Parameters<typeof dateFromTimestamp>[0]): string | null {
  const d = dateFromTimestamp(ts);
  return d === undefined ? null : d.toISOString();
}

/** The status as JSON: field names as in the proto (camelCase), times RFC 3339, empty fields left out. */
export function statusJson(s: HostStatus__Output): Record<string, unknown> {
  const out: Record<string, unknown> = {
    hostId: s.hostId,
    healthy: s.health === 'HOST_HEALTH_HEALTHY',
    reason: s.reason,
  };
  if (s.reasonCode !== 'REFUSAL_CODE_UNSPECIFIED') out['reasonCode'] = s.reasonCode;
  if (s.expiresAt !== null) out['expiresAt'] = iso(s.expiresAt);
  if (s.certificateSerial !== '') out['certificateSerial'] = s.certificateSerial;
  if (s.policyClass !== '') {
    out['policyClass'] = s.policyClass;
    out['policyVersion'] = s.policyVersion;
  }
  if (s.attestationId !== '') out['attestationId'] = s.attestationId;
  if (s.updatedAt !== null) out['updatedAt'] = iso(s.updatedAt);
  if (s.refusals.length > 0) {
    out['refusals'] = s.refusals.map((r) => ({ code: r.code, message: r.message, details: r.details }));
  }
  return out;
}

function statusText(s: HostStatus__Output): string {
  if (s.health === 'HOST_HEALTH_HEALTHY') {
    const policy = s.policyClass === '' ? '' : ` (passed ${s.policyClass} v${s.policyVersion})`;
    return `${s.hostId}: healthy, certificate ${s.certificateSerial} valid until ${iso(s.expiresAt)}${policy}\n`;
  }
  const lines = [`${s.hostId}: unhealthy: ${s.reason}`];
  for (const r of s.refusals) lines.push(`  ${r.code}: ${r.message}`);
  return `${lines.join('\n')}\n`;
}

function parse(argv: string[], options: ParseArgsOptionsConfig) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}

async function check(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    json: { type: 'boolean' },
    server: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new CliUsageError('host check takes exactly one host id');
  const hostId = positionals[0]!;
  if (!HOST_ID.test(hostId)) throw new CliUsageError('a host id is 1-128 printable characters');
  const server = values['server'] as string | undefined;
  const address = serviceAddress('health-cert-issuer', server);
  const client = createServiceClient('health-cert-issuer', server === undefined ? {} : { server });
  try {
    const res = await unary<CheckHostResponse__Output>((cb) =>
      client.CheckHost({ hostId }, { deadline: deadline(10_000) }, cb),
    );
    const status = res.status;
    if (status === null) throw new Error('the issuer answered without a status');
    const healthy = status.health === 'HOST_HEALTH_HEALTHY';
    if (values['json']) process.stdout.write(`${JSON.stringify(statusJson(status))}\n`);
    else (healthy ? process.stdout : process.stderr).write(statusText(status));
    return healthy ? EXIT_OK : EXIT_REFUSED;
  } catch (err) {
    // Fail closed: a scheduler that cannot ask must not place work on the host.
    process.stderr.write(`hostgate host check: ${describeGrpcError(err, address)}\n`);
    return EXIT_REFUSED;
  } finally {
    client.close();
  }
}

async function watch(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    'no-snapshot': { type: 'boolean' },
    server: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  for (const id of positionals)
    if (!HOST_ID.test(id)) throw new CliUsageError(`bad host id ${JSON.stringify(id)}`);
  const server = values['server'] as string | undefined;
  const address = serviceAddress('health-cert-issuer', server);
  const client = createServiceClient('health-cert-issuer', server === undefined ? {} : { server });
  const stream = client.WatchFleet({ hostIds: positionals, includeSnapshot: !values['no-snapshot'] });
  const stop = () => stream.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await new Promise<number>((resolve) => {
      stream.on('data', (m: WatchFleetResponse__Output) => {
        const line: Record<string, unknown> = {
          cause: m.cause.replace('FLEET_CHANGE_CAUSE_', '').toLowerCase(),
        };
        if (m.status !== null) line['status'] = statusJson(m.status);
        if (m.snapshotComplete) line['snapshotComplete'] = true;
        process.stdout.write(`${JSON.stringify(line)}\n`);
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code === grpc.status.CANCELLED) resolve(EXIT_OK);
        else {
          process.stderr.write(`hostgate host watch: ${describeGrpcError(err, address)}\n`);
          resolve(EXIT_REFUSED);
        }
      });
      stream.on('end', () => resolve(EXIT_OK));
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    client.close();
  }
}

async function revoke(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    reason: { type: 'string' },
    operator: { type: 'string' },
    actor: { type: 'string' },
    token: { type: 'string' },
    json: { type: 'boolean' },
    server: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new CliUsageError('host revoke takes exactly one host id');
  const hostId = positionals[0]!;
  if (!HOST_ID.test(hostId)) throw new CliUsageError('a host id is 1-128 printable characters');
  const reason = values['reason'] as string | undefined;
  if (reason === undefined || reason.trim() === '')
    throw new CliUsageError('--reason is required (it is audited)');
  const metadata = new grpc.Metadata();
  const token = (values['token'] as string | undefined) ?? process.env['HOSTGATE_ADMIN_TOKEN'];
  if (token !== undefined && token !== '') metadata.set('authorization', `Bearer ${token}`);
  const operator =
    (values['operator'] as string | undefined) ??
    (values['actor'] as string | undefined) ??
    process.env['HOSTGATE_OPERATOR'] ??
    process.env['USER'];
  if (operator !== undefined && operator.trim() !== '') metadata.set('x-hostgate-operator', operator.trim());
  const server = values['server'] as string | undefined;
  const address = serviceAddress('health-cert-issuer', server);
  const client = createServiceClient('health-cert-issuer', server === undefined ? {} : { server });
  try {
    const res = await unary<RevokeHostResponse__Output>((cb) =>
      client.RevokeHost({ hostId, reason }, metadata, { deadline: deadline() }, cb),
    );
    if (values['json']) process.stdout.write(`${JSON.stringify({ hostId, revoked: res.serials })}\n`);
    else if (res.serials.length === 0) process.stdout.write(`${hostId}: no live certificate to revoke\n`);
    else process.stdout.write(`${hostId}: revoked ${res.serials.join(', ')}\n`);
    return EXIT_OK;
  } catch (err) {
    process.stderr.write(`hostgate host revoke: ${describeGrpcError(err, address)}\n`);
    return EXIT_REFUSED;
  } finally {
    client.close();
  }
}

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'check':
      return check(rest);
    case 'watch':
      return watch(rest);
    case 'revoke':
      return revoke(rest);
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    default:
      throw new CliUsageError(
        sub === undefined
          ? 'a subcommand is required (check, watch, revoke)'
          : `unknown subcommand '${sub}' (check, watch, revoke)`,
      );
  }
};
