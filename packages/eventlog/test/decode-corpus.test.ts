// Every event of every real log in ../shared/corpus/eventlogs decodes without throwing, and the digest
// check leaves exactly the mismatches we have explained. Skips when the corpus is absent.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import {
  type CertificateInfo,
  DIGEST_QUIRKS,
  type DecodedEvent,
  decodeEvent,
  defaultHash,
  describeEvent,
  EV_SEPARATOR,
  type HashFunction,
  hashFromProvider,
  parseEventLog,
} from '../src/index.ts';

// HOSTGATE_EVENTLOG_CORPUS points elsewhere (as in corpus.ts), e.g. to prove the skip.
const CORPUS =
  process.env['HOSTGATE_EVENTLOG_CORPUS'] ??
  resolve(import.meta.dirname, '../../../../shared/corpus/eventlogs');
const skip = existsSync(CORPUS) ? false : `corpus absent at ${CORPUS}`;

const NODE_HASH: Record<string, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
};
const hash: HashFunction = (bank, bytes) => {
  const n = NODE_HASH[bank];
  return n ? new Uint8Array(createHash(n).update(bytes).digest()) : undefined;
};

/**
 * Digest mismatches left after the quirk table, with the reason. Both are the same Arch Linux machine:
 * its systemd-boot logged the kernel command line as UCS-2 with an odd length (365 bytes), and no byte
 * range of the event data (as UCS-2 or as ASCII) hashes to the digest, so what it measured is not in
 * the log. tpm2_eventlog warns about the same event ("Event 24's digest does not match its payload").
 */
const EXPLAINED_MISMATCHES = [
  'gotpmtools-arch-linux-workstation.bin#24',
  'tpm2tools-event-arch-linux.bin#24',
];

test('corpus: every event decodes, no undecodable bodies, digest mismatches only where explained', {
  skip,
}, (t) => {
  const files = readdirSync(CORPUS)
    .filter((f) => f.endsWith('.bin'))
    .sort();
  assert.ok(files.length >= 20, `only ${files.length} logs`);
  const mismatches: string[] = [];
  const undecodable: string[] = [];
  const quirkUse = new Map<string, Set<string>>();
  let events = 0;
  let checked = 0;
  let logs = 0;
  for (const file of files) {
    let log: ReturnType<typeof parseEventLog>;
    try {
      log = parseEventLog(new Uint8Array(readFileSync(join(CORPUS, file))));
    } catch {
      continue; // broken inputs (ASCII, etc.) are the parser's concern, tested there
    }
    logs++;
    for (const e of log.events) {
      events++;
      const d = decodeEvent(e, hash);
      assert.ok(describeEvent(d).length > 0);
      if (d.kind === 'raw' && d.error)
        undecodable.push(`${file}#${e.index} ${d.typeName} ${d.error.code}@${d.error.offset}`);
      const c = d.digestCheck;
      if (c?.checked) {
        checked++;
        if (!c.ok) mismatches.push(`${file}#${e.index}`);
        if (c.quirk) {
          const s = quirkUse.get(c.quirk) ?? new Set();
          s.add(file);
          quirkUse.set(c.quirk, s);
        }
      }
    }
  }
  t.diagnostic(
    `${logs} logs, ${events} events decoded, ${checked} digests checked, ${mismatches.length} mismatches after quirks`,
  );
  assert.deepEqual(undecodable, []);
  assert.deepEqual(mismatches.sort(), EXPLAINED_MISMATCHES);
  // Each quirk is needed by exactly the logs its table entry names, and no quirk is dead.
  for (const q of DIGEST_QUIRKS) {
    assert.deepEqual([...(quirkUse.get(q.id) ?? [])].sort(), [...q.seenIn].sort(), q.id);
  }
  assert.ok(checked > 1000, `only ${checked} digests checked`);
});

test('corpus: without the quirk table the known quirky events do mismatch', { skip }, () => {
  // Proves the quirks are load-bearing: the same events fail the spec preimage.
  let failing = 0;
  for (const q of DIGEST_QUIRKS) {
    for (const file of q.seenIn) {
      const log = parseEventLog(new Uint8Array(readFileSync(join(CORPUS, file))));
      for (const e of log.events) {
        const d = decodeEvent(e, hash);
        if (d.digestCheck?.quirk !== q.id) continue;
        const bare = decodeEvent(e, hash, { quirks: [] });
        assert.equal(bare.digestCheck?.ok, false, `${file}#${e.index}`);
        failing++;
      }
    }
  }
  assert.ok(failing >= 10, `only ${failing} quirky events`);
});

function certificatesOf(d: DecodedEvent): CertificateInfo[] {
  if (d.kind !== 'efi-variable') return [];
  const c = d.variable.content;
  if (c.form === 'signature-data') return c.signature.certificate ? [c.signature.certificate] : [];
  if (c.form !== 'signature-database') return [];
  return c.lists.flatMap((l) => l.entries.flatMap((e) => (e.certificate ? [e.certificate] : [])));
}

test("corpus: subject CNs read by the pure DER walker equal OpenSSL's (node:crypto X509Certificate as the injected inspector)", {
  skip,
}, () => {
  const inspectCertificate = (der: Uint8Array) => {
    const x = new X509Certificate(der);
    return { subject: x.subject, issuer: x.issuer, fingerprint256: x.fingerprint256 };
  };
  let certs = 0;
  for (const file of readdirSync(CORPUS).filter((f) => f.endsWith('.bin'))) {
    let log: ReturnType<typeof parseEventLog>;
    try {
      log = parseEventLog(new Uint8Array(readFileSync(join(CORPUS, file))));
    } catch {
      continue;
    }
    for (const e of log.events) {
      for (const cert of certificatesOf(decodeEvent(e, undefined, { inspectCertificate }))) {
        certs++;
        assert.ok(cert.details, `${file}#${e.index}: OpenSSL could not read the certificate`);
        const cn = /^CN=(.*)$/m.exec(cert.details.subject ?? '')?.[1];
        assert.equal(cert.subjectCN, cn, `${file}#${e.index}`);
      }
    }
  }
  assert.ok(certs >= 50, `only ${certs} certificates`);
});

test('hashFromProvider adapts the package hash provider', () => {
  const h = hashFromProvider(defaultHash);
  const data = new Uint8Array(4);
  const digest = new Uint8Array(createHash('sha256').update(data).digest());
  assert.deepEqual(
    decodeEvent({ pcr: 0, type: EV_SEPARATOR, data, digests: [{ bank: 'sha256', digest }] }, h).digestCheck,
    {
      checked: true,
      ok: true,
    },
  );
  assert.equal(h('no-such-bank', data), undefined);
});
