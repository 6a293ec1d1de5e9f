// hostgate quote verify: checks a TPM 2.0 quote from tpm2-tools' own files. Exit 0 valid, 1 refused (reason
// code on stderr), 2 usage. Nothing is trusted until the AK's signature and the PCR digest both check.
import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  fromHex,
  isSerializedPcrs,
  type PcrSelection,
  type PcrValueMap,
  parsePcrList,
  parsePcrValues,
  parseSerializedPcrs,
  type QuoteFacts,
  readAkFile,
  selectedPcrs,
  Tpm2Error,
  toHex,
  verifyQuote,
} from '@hostgate/tpm2-js-lite';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';

const USAGE = `usage: hostgate quote verify --ak FILE --attest FILE --signature FILE --pcrs FILE
                             [--pcr-list sha256:0,1,...] --nonce HEX [--json]

  --ak FILE         AK public: TPM2B_PUBLIC (tpm2_createak -u) or PEM (-f pem)
  --attest FILE     TPMS_ATTEST as signed (tpm2_quote -m)
  --signature FILE  TPMT_SIGNATURE (tpm2_quote -s)
  --pcrs FILE       PCR values (tpm2_quote -o): its default serialized form, or with
                    --pcr-list the '-F values' form (digests back to back)
  --pcr-list LIST   PCRs asked for (tpm2-tools syntax, banks joined by '+'; <bank>:all
                    is PCRs 0-23); the quote must cover them
  --nonce HEX       the challenge; must equal the quote's extraData
  --json            one JSON object on stdout:
                    {"valid":true,"clock","resetCount","restartCount","safe",
                     "firmwareVersion","pcrs":{"sha256":{"0":"hex",...}}}

Exit 0 when valid; 1 with 'CODE: reason' on stderr when not (SIGNATURE_INVALID,
NONCE_MISMATCH, PCR_DIGEST_MISMATCH, PCR_SELECTION_MISMATCH, BAD_MAGIC, WRONG_TYPE,
SCHEME_MISMATCH, KEY_NOT_ATTESTATION_KEY, UNSUPPORTED_ALGORITHM, MALFORMED,
FILE_UNREADABLE); 2 on usage errors.`;

/** A refusal that is about an input file rather than the quote itself. */
class FileError extends Error {
  readonly code = 'FILE_UNREADABLE';
}

const MAX_INPUT_BYTES = 1 << 20;

// Reads at most 1 MiB + 1 byte, whatever the file is: a device or a pipe has no size to
// check first, and reading it whole (/dev/zero) would never end.
async function readCapped(file: string): Promise<Uint8Array | undefined> {
  const fh = await open(file, 'r');
  try {
    const buf = new Uint8Array(MAX_INPUT_BYTES + 1);
    let total = 0;
    while (total < buf.length) {
      const { bytesRead } = await fh.read(buf, total, buf.length - total, null);
      if (bytesRead === 0) return buf.subarray(0, total);
      total += bytesRead;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

async function load(flag: string, file: string): Promise<Uint8Array> {
  let b: Uint8Array | undefined;
  try {
    b = await readCapped(file);
  } catch (err) {
    throw new FileError(
      `--${flag} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  if (b === undefined) throw new FileError(`--${flag} ${file}: larger than 1 MiB`);
  return b;
}

function pcrsJson(pcrs: PcrValueMap): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [hash, bank] of pcrs) {
    out[hash] = {};
    for (const [pcr, v] of [...bank].sort((a, b) => a[0] - b[0])) out[hash]![String(pcr)] = toHex(v);
  }
  return out;
}

function factsJson(f: QuoteFacts) {
  return {
    valid: true,
    // Milliseconds the TPM has been powered; a JSON number unless beyond 2^53 (then a decimal string).
    clock: f.clock <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(f.clock) : f.clock.toString(),
    resetCount: f.resetCount,
    restartCount: f.restartCount,
    safe: f.safe,
    firmwareVersion: `0x${f.firmwareVersion.toString(16).padStart(16, '0')}`,
    pcrs: pcrsJson(f.pcrs),
  };
}

function valuesLength(selection: PcrSelection[]): number {
  const size: Record<number, number> = { 4: 20, 11: 32, 12: 48, 13: 64 };
  return selection.reduce((n, s) => n + selectedPcrs(s.select).length * (size[s.hashAlg] ?? 0), 0);
}

async function verify(argv: string[]): Promise<number> {
  const options = {
    ak: { type: 'string' },
    attest: { type: 'string' },
    signature: { type: 'string' },
    pcrs: { type: 'string' },
    'pcr-list': { type: 'string' },
    nonce: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
  let values: ReturnType<typeof parseArgs<{ options: typeof options; strict: true }>>['values'];
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  for (const flag of ['ak', 'attest', 'signature', 'pcrs', 'nonce'] as const) {
    if (values[flag] === undefined) throw new CliUsageError(`--${flag} is required`);
  }
  let nonce: Uint8Array;
  try {
    nonce = fromHex(values.nonce!.replace(/^0x/i, ''));
  } catch {
    throw new CliUsageError('--nonce must be an even-length hex string');
  }
  let asked: PcrSelection[] | undefined;
  if (values['pcr-list'] !== undefined) {
    try {
      asked = parsePcrList(values['pcr-list']);
    } catch (err) {
      throw new CliUsageError(`--pcr-list: ${(err as Error).message}`);
    }
  }
  const json = values.json;
  try {
    const [ak, attest, signature, pcrFile] = await Promise.all([
      load('ak', values.ak!),
      load('attest', values.attest!),
      load('signature', values.signature!),
      load('pcrs', values.pcrs!),
    ]);
    let pcrs: PcrValueMap;
    if (asked !== undefined && pcrFile.length === valuesLength(asked)) pcrs = parsePcrValues(pcrFile, asked);
    else if (isSerializedPcrs(pcrFile) || asked === undefined) pcrs = parseSerializedPcrs(pcrFile).pcrs;
    else {
      throw new Tpm2Error(
        'MALFORMED',
        `--pcrs: ${pcrFile.length} bytes is neither the serialized form nor the ${valuesLength(asked)} bytes of values for --pcr-list`,
      );
    }
    const facts = verifyQuote({
      akPublic: readAkFile(ak),
      attest,
      signature,
      nonce,
      pcrs,
      ...(asked !== undefined ? { pcrSelection: asked } : {}),
    });
    if (json) process.stdout.write(`${JSON.stringify(factsJson(facts))}\n`);
    else {
      const banks = [...facts.pcrs].map(([h, b]) => `${h}:${[...b.keys()].join(',')}`).join('+');
      process.stdout.write(
        `valid: quote over ${banks}, clock ${facts.clock} ms, resetCount ${facts.resetCount}, restartCount ${facts.restartCount}, safe ${facts.safe}\n`,
      );
    }
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof Tpm2Error) && !(err instanceof FileError)) throw err;
    const offset = err instanceof Tpm2Error && err.offset > 0 ? ` (offset ${err.offset})` : '';
    process.stderr.write(`hostgate quote: ${err.code}: ${err.message}${offset}\n`);
    if (json)
      process.stdout.write(`${JSON.stringify({ valid: false, code: err.code, message: err.message })}\n`);
    return EXIT_REFUSED;
  }
}

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (sub === undefined) throw new CliUsageError('missing subcommand (verify)');
  if (sub !== 'verify') throw new CliUsageError(`unknown subcommand '${sub}' (verify)`);
  return verify(rest);
};
