// Mutation fuzzer for tpm2-js-lite's verifier half: every unmarshal function, the tpm2-tools file readers,
// verifyQuote and verifyCertify get mutated valid inputs; anything thrown other than Tpm2Error is a bug
// (as is a Tpm2Error whose offset lies outside the input).
// Usage: node bench/src/fuzz-tpm2.ts [--count N (default 1000000)] [--seed S]
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ekTemplate,
  marshalDigestList,
  marshalPcrSelectionList,
  marshalPublic,
  marshalTpmtPublic,
  objectName,
  parsePcrList,
  parsePcrValues,
  parseSerializedPcrs,
  serializePcrs,
  Tpm2Error,
  unmarshalAttest,
  unmarshalDigestList,
  unmarshalPcrSelectionList,
  unmarshalPublic,
  unmarshalSignature,
  unmarshalTpmtPublic,
  verifyCertify,
  verifyQuote,
} from '@hostgate/tpm2-js-lite';
import { samplePcrs, softwareAk, softwareCertify, softwareQuote } from '@hostgate/tpm2-js-lite/testing';

/** xorshift32: reproducible runs from --seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x42, 0x23, 0x0b];

function mutate(input: Uint8Array, next: () => number, corpus: Uint8Array[]): Uint8Array {
  let b = input.slice();
  const rounds = 1 + (next() % 4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : next() % b.length;
    switch (next() % 9) {
      case 0: // bit flip
        if (b.length) b[at] = b[at]! ^ (1 << (next() % 8));
        break;
      case 1: // interesting byte
        if (b.length) b[at] = INTERESTING[next() % INTERESTING.length]!;
        break;
      case 2: // u16 overwrite: hits size and algorithm fields
        if (b.length > 1) {
          const v = next() % 4 === 0 ? 0xffff : next() % 0x300;
          b[Math.min(at, b.length - 2)] = v >> 8;
          b[Math.min(at, b.length - 2) + 1] = v & 0xff;
        }
        break;
      case 3: // truncate
        b = b.slice(0, at);
        break;
      case 4: // extend
        b = Uint8Array.from([...b, ...Array.from({ length: 1 + (next() % 16) }, () => next() & 0xff)]);
        break;
      case 5: // delete a run
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + (next() % 8))]);
        break;
      case 6: // insert a run
        b = Uint8Array.from([
          ...b.subarray(0, at),
          ...Array.from({ length: 1 + (next() % 8) }, () => next() & 0xff),
          ...b.subarray(at),
        ]);
        break;
      case 7: {
        // splice the tail of another seed
        const other = corpus[next() % corpus.length]!;
        b = Uint8Array.from([...b.subarray(0, at), ...other.subarray(next() % Math.max(1, other.length))]);
        break;
      }
      default: // random byte
        if (b.length) b[at] = next() & 0xff;
    }
  }
  return b;
}

interface Target {
  name: string;
  seeds: Uint8Array[];
  run: (b: Uint8Array) => unknown;
  /** Whether a Tpm2Error's offset refers to this input. */
  offsets: boolean;
  /** Signed (or named) bytes: acceptance of anything but these exact bytes is a forgery. */
  onlyAccept?: Uint8Array;
}

function targets(): Target[] {
  const aks = [
    softwareAk('p256'),
    softwareAk('rsa2048'),
    softwareAk('p384'),
    softwareAk('rsa2048', { rsaScheme: 'rsapss' }),
  ];
  const pcrs = samplePcrs('sha256', [0, 1, 2, 7]);
  const nonce = new Uint8Array(randomBytes(16));
  const quotes = aks.map((ak) => ({ ak, ...softwareQuote({ ak, nonce, pcrs }) }));
  const certified = aks[0]!.publicBytes;
  const certs = aks.map((ak) => ({ ak, ...softwareCertify({ ak, nonce, certified }) }));
  const publics = [
    ...aks.map((a) => a.publicBytes),
    marshalTpmtPublic(ekTemplate('rsa')),
    marshalTpmtPublic(ekTemplate('ecc')),
  ];
  const selection = parsePcrList('sha256:0,1,2,7+sha1:3');
  const both = new Map([...pcrs, ...samplePcrs('sha1', [3])]);
  const tools = serializePcrs(selection, both);
  const valuesSel = parsePcrList('sha256:0,1,2,7');
  const q0 = quotes[0]!;
  return [
    { name: 'unmarshalTpmtPublic', seeds: publics, run: unmarshalTpmtPublic, offsets: true },
    {
      name: 'unmarshalPublic',
      seeds: publics.map((p) => marshalPublic(unmarshalTpmtPublic(p))),
      run: unmarshalPublic,
      offsets: true,
    },
    {
      name: 'unmarshalAttest',
      seeds: [...quotes, ...certs].map((q) => q.attest),
      run: unmarshalAttest,
      offsets: true,
    },
    {
      name: 'unmarshalSignature',
      seeds: [...quotes, ...certs].map((q) => q.signature),
      run: unmarshalSignature,
      offsets: true,
    },
    {
      name: 'unmarshalPcrSelectionList',
      seeds: [marshalPcrSelectionList(selection)],
      run: unmarshalPcrSelectionList,
      offsets: true,
    },
    {
      name: 'unmarshalDigestList',
      seeds: [marshalDigestList([...pcrs.get('sha256')!.values()])],
      run: unmarshalDigestList,
      offsets: true,
    },
    { name: 'parseSerializedPcrs', seeds: [tools], run: parseSerializedPcrs, offsets: true },
    {
      name: 'parsePcrValues',
      seeds: [Uint8Array.from(Buffer.concat([...pcrs.get('sha256')!.values()]))],
      run: (b) => parsePcrValues(b, valuesSel),
      offsets: true,
    },
    { name: 'objectName', seeds: publics, run: objectName, offsets: true },
    {
      name: 'verifyQuote(attest)',
      seeds: [q0.attest],
      run: (b) =>
        verifyQuote({ akPublic: q0.ak.publicBytes, attest: b, signature: q0.signature, nonce, pcrs }),
      offsets: true,
      onlyAccept: q0.attest,
    },
    {
      name: 'verifyQuote(signature)',
      seeds: quotes.map((q) => q.signature),
      run: (b) => verifyQuote({ akPublic: q0.ak.publicBytes, attest: q0.attest, signature: b, nonce, pcrs }),
      offsets: false,
    },
    {
      name: 'verifyQuote(akPublic)',
      seeds: publics,
      run: (b) => verifyQuote({ akPublic: b, attest: q0.attest, signature: q0.signature, nonce, pcrs }),
      offsets: false,
    },
    {
      name: 'verifyCertify(certifiedPublic)',
      seeds: publics,
      run: (b) =>
        verifyCertify({
          akPublic: certs[1]!.ak.publicBytes,
          attest: certs[1]!.attest,
          signature: certs[1]!.signature,
          certifiedPublic: b,
        }),
      offsets: false,
      onlyAccept: certified,
    },
  ];
}

export interface FuzzResult {
  iterations: number;
  typedErrors: number;
  accepted: number;
  perTarget: Record<string, number>;
  seconds: number;
}

/** Runs `count` mutated inputs; throws (with the input in hex) on the first untyped exception. */
export function fuzzTpm2(opts: {
  count: number;
  seed: number;
  onProgress?: (done: number, result: FuzzResult) => void;
}): FuzzResult {
  const next = rng(opts.seed);
  const all = targets();
  const corpus = all.flatMap((t) => t.seeds);
  const result: FuzzResult = { iterations: 0, typedErrors: 0, accepted: 0, perTarget: {}, seconds: 0 };
  const start = performance.now();
  let lastProgress = start;
  for (let i = 0; i < opts.count; i++) {
    const t = all[next() % all.length]!;
    const input = mutate(t.seeds[next() % t.seeds.length]!, next, corpus);
    try {
      t.run(input);
      if (t.onlyAccept && Buffer.compare(input, t.onlyAccept) !== 0) {
        throw new Error(`${t.name} accepted altered signed bytes ${Buffer.from(input).toString('hex')}`);
      }
      result.accepted++;
    } catch (err) {
      if (!(err instanceof Tpm2Error)) {
        const e = new Error(
          `${t.name} threw ${String(err)} on input ${Buffer.from(input).toString('hex')} (seed ${opts.seed}, iteration ${i})`,
          { cause: err },
        );
        throw e;
      }
      if (t.offsets && (err.offset < 0 || err.offset > input.length)) {
        throw new Error(
          `${t.name}: Tpm2Error offset ${err.offset} outside ${input.length}-byte input ${Buffer.from(input).toString('hex')}`,
        );
      }
      result.typedErrors++;
    }
    result.iterations++;
    result.perTarget[t.name] = (result.perTarget[t.name] ?? 0) + 1;
    if (opts.onProgress && (i & 1023) === 0 && performance.now() - lastProgress > 1000) {
      lastProgress = performance.now();
      result.seconds = (lastProgress - start) / 1000;
      opts.onProgress(i, result);
    }
  }
  result.seconds = (performance.now() - start) / 1000;
  return result;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '1000000' }, seed: { type: 'string' } },
  });
  const count = Number(values.count);
  const seed = values.seed !== undefined ? Number(values.seed) : randomBytes(4).readUInt32BE(0);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error('--count must be a positive integer');
  process.stderr.write(`fuzz-tpm2: ${count} mutated inputs, seed ${seed}\n`);
  const r = fuzzTpm2({
    count,
    seed,
    onProgress: (done, res) =>
      process.stderr.write(
        `fuzz-tpm2: ${done}/${count} (${Math.round(done / res.seconds)}/s) typed errors ${res.typedErrors}, accepted ${res.accepted}\n`,
      ),
  });
  process.stdout.write(
    `fuzz-tpm2: ${r.iterations} inputs in ${r.seconds.toFixed(1)} s, seed ${seed}: ${r.typedErrors} Tpm2Error, ${r.accepted} accepted, 0 other exceptions\n`,
  );
  for (const [name, n] of Object.entries(r.perTarget).sort())
    process.stdout.write(`  ${name.padEnd(32)} ${n}\n`);
}
