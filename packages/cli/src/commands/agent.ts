// hostgate agent: the host side of HostGate. `enroll` proves the TPM (EK certificate + credential
// activation); `attest` quotes the boot PCRs over a fresh nonce, has the AK certify a TPM-resident
// signing key, sends both with the boot event log, and writes the health certificate it gets back.
// Keys are TPM primaries re-created from fixed templates (same TPM, same template, same key), so the
// agent keeps no state between runs.
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EV_NO_ACTION, EventLogError, parseEventLog } from '@hostgate/eventlog';
import type { ServiceError } from '@grpc/grpc-js';
import type {
  ActivateEnrollmentResponse__Output,
  AttestResponse__Output,
  EnrollResponse__Output,
  GetChallengeResponse__Output,
  HashAlgorithm__Output,
  PcrSelection__Output,
  QuoteCollectorServiceClient,
  Refusal__Output,
} from '@hostgate/protos';
import { digest as tpmDigest, unmarshalTpmtPublic } from '@hostgate/tpm2-js-lite';
import {
  type CreatedObject,
  eccAkTemplate,
  eccSigningKeyTemplate,
  type HashName,
  type PcrSelection,
  TPM_RH,
  Tpm,
  TpmResponseError,
  TpmTransportError,
} from '@hostgate/tpm2-js-lite/client';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';
import { createServiceClient, deadline, describeGrpcError, serviceAddress, unary } from '../grpc-client.ts';

const USAGE = `usage: hostgate agent enroll --tpm TPM [--server ADDR] [--ek-chain FILE] [--json]
       hostgate agent attest --tpm TPM --out cert.pem [--server ADDR] [--eventlog FILE]
                             [--extend-from FILE] [--json]

  --tpm TPM           swtpm:HOST:PORT (a TPM simulator) or a device such as /dev/tpmrm0
  --server ADDR       quote-collector host:port (default $HOSTGATE_QUOTE_COLLECTOR_ADDRESS
                      or 127.0.0.1:50051)
  --ek-chain FILE     PEM intermediates between the EK certificate and the vendor root
  --eventlog FILE     boot event log to send (default: the --extend-from file if given, else
                      /sys/kernel/security/tpm0/binary_bios_measurements)
  --extend-from FILE  first extend that log's digests into PCRs 0-15 of the TPM (a simulator
                      has no firmware); skipped when the PCRs already hold exactly those values
  --out FILE          where the health certificate goes (PEM)
  --json              machine-readable output on stdout

enroll prints {"hostId": "..."}. attest writes the certificate and exits 0; when refused it
exits 1 and prints every reason as 'CODE: message' on stderr (with --json: {"refused": true,
"refusals": [{"code", "message", "details"}], ...} on stdout). Usage errors exit 2.`;

const DEFAULT_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
/** What the collector accepts; a larger log is refused there anyway. */
const MAX_EVENT_LOG_BYTES = 8 * 1024 * 1024;
/** Attest waits for the whole pipeline (the collector's own timeout is 30 s by default). */
const ATTEST_DEADLINE_MS = 90_000;

/** A failure the operator can act on: printed on one line, exit 1. */
class AgentError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface Flags {
  tpm: string;
  server: string | undefined;
  json: boolean;
}

function commonFlags(values: Record<string, unknown>): Flags {
  const tpm = values['tpm'];
  if (typeof tpm !== 'string' || tpm === '')
    throw new CliUsageError('--tpm is required (swtpm:HOST:PORT or /dev/tpmrm0)');
  if (!/^(swtpm|mssim):[^:]+:\d{1,5}$/.test(tpm) && !tpm.startsWith('/'))
    throw new CliUsageError(`--tpm ${tpm}: expected swtpm:HOST:PORT or a device path such as /dev/tpmrm0`);
  const server = values['server'];
  return { tpm, server: typeof server === 'string' ? server : undefined, json: values['json'] === true };
}

function openTpm(address: string): Tpm {
  try {
    return Tpm.open(address);
  } catch (err) {
    throw new AgentError('TPM_UNAVAILABLE', `cannot open TPM ${address}: ${(err as Error).message}`);
  }
}

/** Runs `fn` with the TPM, flushing every transient object it created (simulators have no resource manager). */
async function withTpm<T>(
  address: string,
  fn: (tpm: Tpm, track: (o: CreatedObject) => CreatedObject) => Promise<T>,
): Promise<T> {
  const tpm = openTpm(address);
  const handles: number[] = [];
  try {
    await tpm.startup('clear');
    return await fn(tpm, (o) => {
      handles.push(o.handle);
      return o;
    });
  } finally {
    for (const h of handles.reverse()) await tpm.flushContext(h).catch(() => {});
    await tpm.close().catch(() => {});
  }
}

/** The AK: a restricted ECC P-256 signing primary in the endorsement hierarchy (deterministic). */
const createAk = (tpm: Tpm) => tpm.createPrimary(TPM_RH.ENDORSEMENT, eccAkTemplate());
/** The certificate's subject key: an unrestricted sign-only ECC P-256 primary in the owner hierarchy. */
const createSubjectKey = (tpm: Tpm) => tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());

function printRefusals(
  flags: Flags,
  refusals: readonly Refusal__Output[],
  extra: Record<string, unknown>,
): number {
  if (flags.json) {
    const out = {
      refused: true,
      ...extra,
      refusals: refusals.map((r) => ({ code: r.code, message: r.message, details: r.details })),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    for (const r of refusals) process.stderr.write(`${r.code}: ${r.message}\n`);
  }
  return EXIT_REFUSED;
}

function client(flags: Flags): { qc: QuoteCollectorServiceClient; address: string } {
  return {
    qc: createServiceClient('quote-collector', flags.server === undefined ? {} : { server: flags.server }),
    address: serviceAddress('quote-collector', flags.server),
  };
}

async function readPemChain(file: string): Promise<Buffer[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError(
      'FILE_UNREADABLE',
      `--ek-chain ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new AgentError('FILE_UNREADABLE', `--ek-chain ${file}: no PEM certificate in it`);
  return blocks.map((b) => Buffer.from(b.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'));
}

async function enroll(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tpm: { type: 'string' },
      server: { type: 'string' },
      'ek-chain': { type: 'string' },
      json: { type: 'boolean' },
    },
    allowPositionals: false,
  });
  const flags = commonFlags(values);
  const chain = values['ek-chain'] === undefined ? [] : await readPemChain(values['ek-chain']);
  const { qc, address } = client(flags);
  try {
    return await withTpm(flags.tpm, async (tpm, track) => {
      // The EK the manufacturer certified: RSA 2048 (0x01c00002) first, else ECC P-256 (0x01c0000a).
      let alg: 'rsa' | 'ecc' = 'rsa';
      let ekCert = await tpm.readEkCertificate('rsa');
      if (ekCert === undefined) {
        alg = 'ecc';
        ekCert = await tpm.readEkCertificate('ecc');
      }
      if (ekCert === undefined)
        throw new AgentError(
          'EK_CERT_MISSING',
          'the TPM holds no EK certificate in NV (0x01c00002 RSA, 0x01c0000a ECC)',
        );
      const ek = track(await tpm.createEk(alg));
      const ak = track(await createAk(tpm));
      const enrolled = await unary<EnrollResponse__Output>((cb) =>
        qc.Enroll(
          { ekPublic: ek.public, ekCertificate: ekCert, ekCertificateChain: chain, akPublic: ak.public },
          { deadline: deadline() },
          cb,
        ),
      ).catch((err: unknown) => {
        throw new AgentError('UNAVAILABLE', describeGrpcError(err, address));
      });
      if (enrolled.refusals.length > 0)
        return printRefusals(flags, enrolled.refusals, { hostId: enrolled.hostId });
      const secret = await tpm.activateCredentialWithEk(
        ak.handle,
        ek.handle,
        enrolled.credentialBlob,
        enrolled.encryptedSecret,
      );
      const activated = await unary<ActivateEnrollmentResponse__Output>((cb) =>
        qc.ActivateEnrollment({ enrollmentId: enrolled.enrollmentId, secret }, { deadline: deadline() }, cb),
      ).catch((err: unknown) => {
        throw new AgentError('UNAVAILABLE', describeGrpcError(err, address));
      });
      if (activated.refusals.length > 0)
        return printRefusals(flags, activated.refusals, { hostId: activated.hostId });
      process.stdout.write(`${JSON.stringify({ hostId: activated.hostId })}\n`);
      return EXIT_OK;
    });
  } finally {
    qc.close();
  }
}

const HASH_OF_ENUM: Partial<Record<HashAlgorithm__Output, HashName>> = {
  HASH_ALGORITHM_SHA1: 'sha1',
  HASH_ALGORITHM_SHA256: 'sha256',
  HASH_ALGORITHM_SHA384: 'sha384',
  HASH_ALGORITHM_SHA512: 'sha512',
};
const ENUM_OF_HASH: Record<HashName, HashAlgorithm__Output> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
};
const ALG_ID: Record<HashName, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };
const SIZE: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const ALL_BANKS: HashName[] = ['sha1', 'sha256', 'sha384', 'sha512'];
const EXTEND_PCRS = Array.from({ length: 16 }, (_, i) => i);

async function readLog(file: string, flag: string): Promise<Uint8Array> {
  try {
    const info = await stat(file);
    // securityfs reports size 0 for the live log: only a regular file's size can be checked up front.
    if (info.size > MAX_EVENT_LOG_BYTES)
      throw new AgentError(
        'EVENTLOG_TOO_LARGE',
        `${flag} ${file}: ${info.size} bytes, larger than ${MAX_EVENT_LOG_BYTES}`,
      );
    const bytes = await readFile(file);
    if (bytes.length > MAX_EVENT_LOG_BYTES)
      throw new AgentError('EVENTLOG_TOO_LARGE', `${flag} ${file}: larger than ${MAX_EVENT_LOG_BYTES} bytes`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const hint =
      file === DEFAULT_EVENT_LOG
        ? ' (run as root on a host with a TPM and securityfs mounted, or pass --eventlog FILE)'
        : '';
    throw new AgentError('EVENTLOG_UNREADABLE', `cannot read the event log ${file}: ${code}${hint}`);
  }
}

/**
 * Extends each measured event of `log` into PCRs 0-15 of the banks the TPM has (EV_NO_ACTION carries
 * no measurement). Idempotent: when the PCRs already hold what the log replays to, nothing is
 * extended; when they hold anything else but their reset value, it refuses rather than add to it.
 */
async function extendFrom(
  tpm: Tpm,
  logBytes: Uint8Array,
  file: string,
): Promise<{ extended: number; skipped: boolean }> {
  let log: ReturnType<typeof parseEventLog>;
  try {
    log = parseEventLog(logBytes, { maxLogSize: MAX_EVENT_LOG_BYTES });
  } catch (err) {
    const where = err instanceof EventLogError ? ` at byte ${err.offset}` : '';
    throw new AgentError('EVENTLOG_MALFORMED', `--extend-from ${file}: ${(err as Error).message}${where}`);
  }
  // One bank at a time: a TPM that does not implement a hash at all refuses the whole command.
  const current = { values: new Map<HashName, Map<number, Uint8Array>>() };
  for (const hash of ALL_BANKS) {
    const read = await tpm.pcrRead([{ hash, pcrs: EXTEND_PCRS }]).catch((err: unknown) => {
      if (err instanceof TpmResponseError) return undefined;
      throw err;
    });
    const bank = read?.values.get(hash);
    if (bank !== undefined && bank.size === EXTEND_PCRS.length) current.values.set(hash, bank);
  }
  const banks = ALL_BANKS.filter((b) => current.values.has(b));
  if (banks.length === 0) throw new AgentError('TPM_ERROR', 'the TPM reports no PCR bank with PCRs 0-15');
  const measured = log.events.filter((e) => e.type !== EV_NO_ACTION && e.pcr >= 0 && e.pcr <= 15);
  // What the PCRs hold after replaying the log from their reset value (all zeros for 0-15).
  const expected = new Map<HashName, Uint8Array[]>(
    banks.map((b) => [b, EXTEND_PCRS.map(() => new Uint8Array(SIZE[b]))]),
  );
  const steps: { pcr: number; digests: { hash: HashName; digest: Uint8Array }[] }[] = [];
  for (const e of measured) {
    const digests: { hash: HashName; digest: Uint8Array }[] = [];
    for (const b of banks) {
      const d = e.digests.find((x) => x.algId === ALG_ID[b]);
      if (d === undefined || d.digest.length !== SIZE[b]) continue;
      digests.push({ hash: b, digest: d.digest });
      const values = expected.get(b)!;
      values[e.pcr] = tpmDigest(ALG_ID[b], values[e.pcr]!, d.digest);
    }
    if (digests.length > 0) steps.push({ pcr: e.pcr, digests });
  }
  const same = (want: (b: HashName, pcr: number) => Uint8Array) =>
    banks.every((b) =>
      EXTEND_PCRS.every((pcr) => Buffer.from(current.values.get(b)!.get(pcr)!).equals(want(b, pcr))),
    );
  if (same((b, pcr) => expected.get(b)![pcr]!)) return { extended: 0, skipped: true };
  if (!same((b) => new Uint8Array(SIZE[b]))) {
    throw new AgentError(
      'PCRS_NOT_FRESH',
      `--extend-from ${file}: PCRs 0-15 already hold other measurements; extend only into a freshly started TPM`,
    );
  }
  for (const s of steps) await tpm.pcrExtend(s.pcr, s.digests);
  return { extended: steps.length, skipped: false };
}

/** PCR values for the selection, read so that they are the values quoted (no extend in between). */
async function quoteConsistently(tpm: Tpm, ak: number, nonce: Uint8Array, selection: PcrSelection[]) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = await tpm.pcrRead(selection);
    const quote = await tpm.quote(ak, nonce, selection);
    const after = await tpm.pcrRead(selection);
    if (before.updateCounter === after.updateCounter) return { quote, values: after.values };
  }
  throw new AgentError('PCRS_CHANGING', 'the PCRs kept changing while quoting; try again');
}

function toPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The certificate must be an X.509 certificate for the key this TPM holds; anything else is not kept. */
function checkCertificateKey(der: Uint8Array, keyPublic: Uint8Array): void {
  let jwk: { crv?: string; x?: string; y?: string };
  try {
    jwk = new X509Certificate(der).publicKey.export({ format: 'jwk' });
  } catch (err) {
    throw new AgentError(
      'CERTIFICATE_INVALID',
      `the certificate returned is not X.509: ${(err as Error).message}`,
    );
  }
  const key = unmarshalTpmtPublic(keyPublic);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  if (key.type !== 'ecc' || jwk.crv !== 'P-256' || jwk.x !== b64(key.x) || jwk.y !== b64(key.y))
    throw new AgentError(
      'CERTIFICATE_KEY_MISMATCH',
      "the certificate returned is not for this TPM's key; not written",
    );
}

function selectionFromChallenge(selection: readonly PcrSelection__Output[]): PcrSelection[] {
  return selection.map((s) => {
    const hash = HASH_OF_ENUM[s.hashAlgorithm];
    if (hash === undefined)
      throw new AgentError(
        'UNSUPPORTED_BANK',
        `the collector asks for PCR bank ${s.hashAlgorithm}, which this agent cannot quote`,
      );
    return { hash, pcrs: [...s.pcrs] };
  });
}

async function attest(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tpm: { type: 'string' },
      server: { type: 'string' },
      eventlog: { type: 'string' },
      'extend-from': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    allowPositionals: false,
  });
  const flags = commonFlags(values);
  const out = values.out;
  if (out === undefined || out === '')
    throw new CliUsageError('--out FILE is required (where the certificate goes)');
  const extendFile = values['extend-from'];
  const logFile = values.eventlog ?? extendFile ?? DEFAULT_EVENT_LOG;
  const logFlag =
    values.eventlog !== undefined ? '--eventlog' : extendFile !== undefined ? '--extend-from' : 'event log';
  // Read everything before touching the TPM, so a missing file changes nothing.
  const eventLog = await readLog(logFile, logFlag);
  const extendLog =
    extendFile === undefined
      ? undefined
      : extendFile === logFile
        ? eventLog
        : await readLog(extendFile, '--extend-from');

  const { qc, address } = client(flags);
  const call = <T>(start: (cb: (err: ServiceError | null, value?: T) => void) => void) =>
    unary<T>(start).catch((err: unknown) => {
      throw new AgentError('UNAVAILABLE', describeGrpcError(err, address));
    });
  try {
    return await withTpm(flags.tpm, async (tpm, track) => {
      if (extendLog !== undefined) {
        const r = await extendFrom(tpm, extendLog, extendFile!);
        if (!flags.json)
          process.stderr.write(
            r.skipped
              ? "PCRs already hold the log's measurements; nothing extended\n"
              : `extended ${r.extended} measurements into PCRs 0-15\n`,
          );
      }
      const ak = track(await createAk(tpm));
      const challenge = await call<GetChallengeResponse__Output>((cb) =>
        qc.GetChallenge({ akName: ak.name }, { deadline: deadline() }, cb),
      );
      const selection = selectionFromChallenge(challenge.pcrSelection);
      const { quote, values: pcrValues } = await quoteConsistently(
        tpm,
        ak.handle,
        challenge.nonce,
        selection,
      );
      const key = track(await createSubjectKey(tpm));
      const certify = await tpm.certify(key.handle, ak.handle, challenge.nonce);
      const pcrBanks = selection.map((s) => ({
        hashAlgorithm: ENUM_OF_HASH[s.hash],
        pcrs: [...(pcrValues.get(s.hash) ?? new Map<number, Uint8Array>())]
          .filter(([pcr]) => s.pcrs.includes(pcr))
          .sort((a, b) => a[0] - b[0])
          .map(([index, digest]) => ({ index, digest })),
      }));
      const res = await call<AttestResponse__Output>((cb) =>
        qc.Attest(
          {
            akName: ak.name,
            nonce: challenge.nonce,
            quote: { attest: quote.attest, signature: quote.signature, pcrBanks },
            eventLog,
            certifiedKey: {
              keyPublic: key.public,
              certifyAttest: certify.attest,
              certifySignature: certify.signature,
            },
          },
          { deadline: deadline(ATTEST_DEADLINE_MS) },
          cb,
        ),
      );
      if (res.result !== 'certificate' || res.certificate === null || res.certificate === undefined) {
        const refusals = res.refused?.refusals ?? [];
        return printRefusals(
          flags,
          refusals.length > 0
            ? refusals
            : [{ code: 'INTERNAL', message: 'no certificate and no reason', details: {} }],
          {
            hostId: res.hostId,
            attestationId: res.attestationId,
          },
        );
      }
      const cert = res.certificate;
      checkCertificateKey(cert.der, key.public);
      await writeFile(out, toPem(cert.der), { mode: 0o644 });
      const notAfter =
        cert.notAfter === null ? undefined : new Date(Number(cert.notAfter.seconds) * 1000).toISOString();
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ hostId: res.hostId, attestationId: res.attestationId, serial: cert.serial, notAfter, policyClass: cert.policyClass, policyVersion: cert.policyVersion, out })}\n`,
        );
      } else {
        process.stdout.write(
          `certificate ${cert.serial} for ${res.hostId} written to ${out}${notAfter ? ` (valid until ${notAfter})` : ''}\n`,
        );
      }
      return EXIT_OK;
    });
  } finally {
    qc.close();
  }
}

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new CliUsageError('a subcommand is required (enroll, attest)');
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  try {
    if (sub === 'enroll') return await enroll(rest);
    if (sub === 'attest') return await attest(rest);
  } catch (err) {
    if (err instanceof TpmResponseError || err instanceof TpmTransportError) {
      process.stderr.write(`hostgate agent ${sub}: TPM_ERROR: ${err.message}\n`);
      if (rest.includes('--json'))
        process.stdout.write(`${JSON.stringify({ error: { code: 'TPM_ERROR', message: err.message } })}\n`);
      return EXIT_REFUSED;
    }
    if (err instanceof AgentError) {
      const json = rest.includes('--json');
      if (json)
        process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`);
      process.stderr.write(`hostgate agent ${sub}: ${err.code}: ${err.message}\n`);
      return EXIT_REFUSED;
    }
    // parseArgs: unknown or malformed flags are usage errors.
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
      throw new CliUsageError(err.message);
    throw err;
  }
  throw new CliUsageError(`unknown subcommand '${sub}' (enroll, attest)`);
};
