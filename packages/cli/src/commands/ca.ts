// hostgate ca: what a verifier needs to check health certificates offline.
//   bundle  the CA certificates, PEM (for openssl verify -CAfile)
//   crl     the current CRL, PEM (or DER with --der)
import { parseArgs } from 'node:util';
import type { GetCaBundleResponse__Output, GetCrlResponse__Output } from '@hostgate/protos';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';
import { createServiceClient, deadline, describeGrpcError, serviceAddress, unary } from '../grpc-client.ts';

const USAGE = `usage: hostgate ca bundle [--server ADDR]
       hostgate ca crl [--der] [--server ADDR]

  bundle  CA certificates of the health-cert-issuer, PEM on stdout:
            hostgate ca bundle > hostgate-ca.pem
            openssl verify -CAfile hostgate-ca.pem cert.pem
  crl     The current certificate revocation list, PEM on stdout (DER with --der):
            openssl verify -crl_check -CRLfile <(hostgate ca crl) -CAfile hostgate-ca.pem cert.pem

  --server ADDR   health-cert-issuer address (default: HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS
                  or 127.0.0.1:50054, what npm start opens)

Exit 0 on success, 1 when the issuer could not be asked, 2 on usage errors.`;

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function run(sub: 'bundle' | 'crl', argv: string[]): Promise<number> {
  let values: { server?: string | undefined; der?: boolean | undefined; help?: boolean | undefined };
  try {
    values = parseArgs({
      args: argv,
      options: {
        server: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...(sub === 'crl' ? { der: { type: 'boolean' as const } } : {}),
      },
      strict: true,
      allowPositionals: false,
    }).values as typeof values;
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const address = serviceAddress('health-cert-issuer', values.server);
  const client = createServiceClient(
    'health-cert-issuer',
    values.server === undefined ? {} : { server: values.server },
  );
  try {
    if (sub === 'bundle') {
      const res = await unary<GetCaBundleResponse__Output>((cb) =>
        client.GetCaBundle({}, { deadline: deadline(10_000) }, cb),
      );
      const text = res.pem !== '' ? res.pem : res.certificates.map((c) => pem('CERTIFICATE', c)).join('');
      if (text === '') throw new Error('the issuer returned an empty CA bundle');
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    } else {
      const res = await unary<GetCrlResponse__Output>((cb) =>
        client.GetCrl({}, { deadline: deadline(10_000) }, cb),
      );
      if (res.der.length === 0) throw new Error('the issuer returned an empty CRL');
      process.stdout.write(values.der ? res.der : pem('X509 CRL', res.der));
    }
    return EXIT_OK;
  } catch (err) {
    process.stderr.write(`hostgate ca ${sub}: ${describeGrpcError(err, address)}\n`);
    return EXIT_REFUSED;
  } finally {
    client.close();
  }
}

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === 'bundle' || sub === 'crl') return run(sub, rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  throw new CliUsageError(
    sub === undefined
      ? 'a subcommand is required (bundle, crl)'
      : `unknown subcommand '${sub}' (bundle, crl)`,
  );
};
