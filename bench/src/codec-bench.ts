// CPU per encode/decode of the Kafka payloads (packages/protos codec) against the reference codec it
// replaced (protobufjs fromObject/encode, checkWire/decode/toObject), alternately in one process.
// Payloads are built as the services build them: Evidence like quote-collector (synthetic UEFI boot
// log, SHA-256 quote), Measurements by the eventlog-replayer's measurementsFromEvidence, Verdict by the
// policy-evaluator's verdictToProto. Times are process CPU (user+system) per call, median of rounds.
// Usage: node bench/src/codec-bench.ts [--rounds N] [--ms MS] [--json]  (npm run bench:codec in bench/)
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { measurementsFromEvidence } from '@hostgate/eventlog-replayer';
import { evaluate } from '@hostgate/policy';
import { measurementsForPolicy, verdictToProto } from '@hostgate/policy-evaluator';
import { type Codec, codec, type Evidence, type KafkaPayloadName, timestampFromDate } from '@hostgate/protos';
import { buildLog, expectedPcrs, uefiBoot } from '@hostgate/test-e2e';
import { referenceCodec } from '../../packages/protos/test/reference-codec.ts';

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

/** Evidence, Measurements and Verdict of one attestation, as the services build them. */
export function realisticPayloads(): Partial<Record<KafkaPayloadName, object>> {
  const events = uefiBoot();
  const pcrs = expectedPcrs(events).get('sha256')!;
  const evidence: Evidence = {
    attestationId: randomUUID(),
    hostId: 'host-000123',
    receivedAt: timestampFromDate(new Date()),
    nonce: bytes(32, 0x4e),
    quote: {
      attest: bytes(145, 0xff),
      signature: bytes(262, 0x30),
      pcrBanks: [
        {
          hashAlgorithm: 'HASH_ALGORITHM_SHA256',
          pcrs: [...pcrs].map(([index, digest]) => ({ index, digest })),
        },
      ],
    },
    quoteInfo: {
      clock: '123456789',
      resetCount: 17,
      restartCount: 2,
      safe: true,
      firmwareVersion: '2314885531079327795',
      pcrSelection: [{ hashAlgorithm: 'HASH_ALGORITHM_SHA256', pcrs: [...pcrs.keys()] }],
      pcrDigest: bytes(32, 0xd1),
      pcrDigestAlgorithm: 'HASH_ALGORITHM_SHA256',
      akName: bytes(34, 0xa0),
    },
    eventLog: buildLog(events),
    certifiedKey: {
      keyPublic: bytes(90, 0x23),
      certifyAttest: bytes(130, 0xff),
      certifySignature: bytes(262, 0x31),
    },
    akPublic: bytes(90, 0x22),
  };
  const decodedEvidence = codec('Evidence').decode(codec('Evidence').encode(evidence));
  const measurements = measurementsFromEvidence(decodedEvidence);
  const decodedMeasurements = codec('Measurements').decode(codec('Measurements').encode(measurements));
  const lib = measurementsForPolicy(decodedMeasurements);
  const verdict = verdictToProto(evaluate(undefined, lib), {
    verdictId: randomUUID(),
    hostClass: 'default',
    measurements: decodedMeasurements,
    evaluatedAt: new Date(),
  });
  return { Evidence: evidence, Measurements: measurements, Verdict: verdict };
}

/** CPU µs per call of `fn` over `reps` calls. */
function cpuRound(fn: () => void, reps: number): number {
  const c = process.cpuUsage();
  for (let i = 0; i < reps; i++) fn();
  const used = process.cpuUsage(c);
  return (used.user + used.system) / reps;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function runCodecBench(rounds: number, ms: number) {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, message] of Object.entries(realisticPayloads()) as [KafkaPayloadName, object][]) {
    const impls: Record<'reference' | 'current', Codec<unknown, unknown>> = {
      reference: referenceCodec(name),
      current: codec(name) as Codec<unknown, unknown>,
    };
    const wire = impls.reference.encode(message);
    const ops = {
      encode: (c: Codec<unknown, unknown>) => () => c.encode(message),
      decode: (c: Codec<unknown, unknown>) => () => c.decode(wire),
    };
    const row: Record<string, number> = { bytes: wire.length };
    for (const [op, make] of Object.entries(ops)) {
      const fns = { reference: make(impls.reference), current: make(impls.current) };
      for (const fn of Object.values(fns)) for (let i = 0; i < 2000; i++) fn(); // warm-up
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) fns.reference();
      const reps = Math.max(50, Math.round((ms * 200) / Math.max(performance.now() - t0, 0.01)));
      const times: Record<string, number[]> = { reference: [], current: [] };
      for (let r = 0; r < rounds; r++)
        for (const which of r % 2 ? (['current', 'reference'] as const) : (['reference', 'current'] as const))
          times[which]!.push(cpuRound(fns[which], reps));
      for (const which of ['reference', 'current'] as const) {
        row[`${op}.${which}Us`] = median(times[which]!);
        row[`${op}.${which}MinUs`] = Math.min(...times[which]!);
      }
    }
    out[name] = row;
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '11' },
      ms: { type: 'string', default: '200' },
      json: { type: 'boolean' },
    },
  });
  const result = runCodecBench(Number(values.rounds), Number(values.ms));
  if (values.json) console.log(JSON.stringify(result));
  else {
    const f = (row: Record<string, number>, op: string) =>
      `${op} ${row[`${op}.referenceUs`]!.toFixed(2)} -> ${row[`${op}.currentUs`]!.toFixed(2)} µs ` +
      `(min ${row[`${op}.referenceMinUs`]!.toFixed(2)} -> ${row[`${op}.currentMinUs`]!.toFixed(2)})`;
    console.log('CPU µs per call, median of rounds (reference = protobufjs path, current = codec())');
    for (const [name, row] of Object.entries(result))
      console.log(
        `${name.padEnd(13)} ${String(row['bytes']).padStart(6)} B  ${f(row, 'encode')}  ${f(row, 'decode')}`,
      );
  }
}
