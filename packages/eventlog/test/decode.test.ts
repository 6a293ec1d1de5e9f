// Decoders on synthetic structures built here byte by byte (UEFI / PC Client PFP layouts), the
// digest check and its quirk table, and hostile inputs: truncated at every offset, mutated, huge lengths.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  checkEventDigest,
  type DecodedEvent,
  type DecodeInput,
  DIGEST_QUIRKS,
  decodeDevicePath,
  decodeEvent,
  describeDigestCheck,
  describeEvent,
  EV_ACTION,
  EV_COMPACT_HASH,
  EV_EFI_ACTION,
  EV_EFI_BOOT_SERVICES_APPLICATION,
  EV_EFI_BOOT_SERVICES_DRIVER,
  EV_EFI_GPT_EVENT,
  EV_EFI_HANDOFF_TABLES,
  EV_EFI_HANDOFF_TABLES2,
  EV_EFI_HCRTM_EVENT,
  EV_EFI_PLATFORM_FIRMWARE_BLOB,
  EV_EFI_PLATFORM_FIRMWARE_BLOB2,
  EV_EFI_RUNTIME_SERVICES_DRIVER,
  EV_EFI_VARIABLE_AUTHORITY,
  EV_EFI_VARIABLE_BOOT,
  EV_EFI_VARIABLE_BOOT2,
  EV_EFI_VARIABLE_DRIVER_CONFIG,
  EV_EVENT_TAG,
  EV_IPL,
  EV_NO_ACTION,
  EV_NONHOST_CODE,
  EV_NONHOST_CONFIG,
  EV_NONHOST_INFO,
  EV_OMIT_BOOT_DEVICE_EVENTS,
  EV_POST_CODE,
  EV_S_CRTM_VERSION,
  EV_SEPARATOR,
  EV_TABLE_OF_DEVICES,
  type HashFunction,
} from '../src/index.ts';

// ---- byte builders (independent of the code under test) ----

const enc = new TextEncoder();
function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
const u8 = (v: number) => Uint8Array.of(v);
function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}
function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}
function u64(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}
/** EFI_GUID bytes of its text form: first three fields little-endian, the rest as written. */
function guid(text: string): Uint8Array {
  const h = text.replace(/-/g, '');
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16));
  return Uint8Array.from([3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15].map((i) => bytes[i]!));
}
function ucs2(s: string, nul = true): Uint8Array {
  const b = new Uint8Array((s.length + (nul ? 1 : 0)) * 2);
  for (let i = 0; i < s.length; i++) b[i * 2] = s.charCodeAt(i);
  return b;
}
const ascii = (s: string, nul = false) => cat(enc.encode(s), nul ? [0] : []);

/** DER TLV with definite length. */
function der(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = cat(...content);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return cat([tag], len, body);
}
/** A structurally valid X.509 certificate skeleton whose subject has CN `cn` (signature is filler). */
function certificate(cn: string, pad = 0): Uint8Array {
  const oid = (...b: number[]) => der(0x06, Uint8Array.from(b));
  const name = (v: string) =>
    der(0x30, der(0x31, der(0x30, oid(0x55, 0x04, 0x03), der(0x0c, enc.encode(v)))));
  const alg = der(0x30, oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b), der(0x05));
  const time = der(0x17, enc.encode('250101000000Z'));
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, u8(2))),
    der(0x02, u8(7)),
    alg,
    name('Issuer CA'),
    der(0x30, time, time),
    name(cn),
    der(0x30, alg, der(0x03, cat([0], new Uint8Array(pad)))),
  );
  return der(0x30, tbs, alg, der(0x03, cat([0], new Uint8Array(64))));
}

const EFI_GLOBAL = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const IMAGE_SECURITY = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const SHIM_LOCK = '605dab50-e046-4300-abb6-3dd810dd8b23';
const CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
const CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
const MICROSOFT = '77fa9abd-0359-4d32-bd60-28f4e78f784b';
const ESP = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';
const DISK = '11111111-2222-3333-4444-555566667777';
const PART = 'aaaaaaaa-bbbb-cccc-dddd-eeeeffff0000';

function variable(vendor: string, name: string, data: Uint8Array): Uint8Array {
  return cat(guid(vendor), u64(name.length), u64(data.length), ucs2(name, false), data);
}
function signatureList(type: string, entries: Uint8Array[], headerSize = 0): Uint8Array {
  const size = 16 + (entries[0]?.length ?? 0);
  const body = cat(...entries.map((e) => cat(guid(MICROSOFT), e)));
  return cat(
    guid(type),
    u32(28 + headerSize + body.length),
    u32(headerSize),
    u32(size),
    new Uint8Array(headerSize),
    body,
  );
}
function node(type: number, sub: number, payload: Uint8Array): Uint8Array {
  return cat([type, sub], u16(4 + payload.length), payload);
}
const END = node(0x7f, 0xff, new Uint8Array(0));
const hdNode = node(4, 1, cat(u32(1), u64(0x800), u64(0x100000), guid(PART), [2, 2]));
const fileNode = node(4, 4, ucs2('\\EFI\\BOOT\\BOOTX64.EFI'));
const pciRoot = node(2, 1, cat(u32(0x0a0341d0), u32(0)));
const pci = node(1, 1, Uint8Array.of(0, 0x1f));
const diskPath = cat(pciRoot, pci, hdNode, fileNode, END);
const DISK_PATH_TEXT = `PciRoot(0x0)/Pci(0x1f,0x0)/HD(1,GPT,${PART},0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI`;

function loadOption(
  attributes: number,
  description: string,
  path: Uint8Array,
  optional = new Uint8Array(0),
): Uint8Array {
  return cat(u32(attributes), u16(path.length), ucs2(description), path, optional);
}
function gpt(
  partitions: { type: string; unique: string; first: number; last: number; name: string }[],
  entrySize = 128,
): Uint8Array {
  const header = cat(
    ascii('EFI PART'),
    u32(0x10000),
    u32(92),
    u32(0xdeadbeef),
    u32(0),
    u64(1),
    u64(0x3fffff),
    u64(34),
    u64(0x3fffde),
    guid(DISK),
    u64(2),
    u32(128),
    u32(entrySize),
    u32(0xcafef00d),
  );
  assert.equal(header.length, 92);
  const entries = partitions.map((p) => {
    const name = new Uint8Array(72);
    name.set(ucs2(p.name, false).subarray(0, 72));
    const e = cat(guid(p.type), guid(p.unique), u64(p.first), u64(p.last), u64(0), name);
    return cat(e, new Uint8Array(entrySize - e.length));
  });
  return cat(header, u64(partitions.length), ...entries);
}
function imageLoad(path: Uint8Array, trailing = new Uint8Array(0)): Uint8Array {
  return cat(u64(0x7e000000), u64(0x1b000), u64(0), u64(path.length), path, trailing);
}
function specId(): Uint8Array {
  return cat(
    ascii('Spec ID Event03', true),
    u32(0),
    [0, 2, 2, 2],
    u32(2),
    u16(4),
    u16(20),
    u16(0xb),
    u16(32),
    [0],
  );
}

const NODE_HASH: Record<string, string> = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384' };
const hash: HashFunction = (bank, bytes) => {
  const n = NODE_HASH[bank];
  return n ? new Uint8Array(createHash(n).update(bytes).digest()) : undefined;
};
function digestsOf(pre: Uint8Array, banks = ['sha1', 'sha256']) {
  return banks.map((bank) => ({ bank, digest: hash(bank, pre)! }));
}
function ev(type: number, data: Uint8Array, pcr = 0, digests = digestsOf(data)): DecodeInput {
  return { pcr, type, data, digests };
}
function decoded<K extends DecodedEvent['kind']>(
  e: DecodedEvent,
  kind: K,
): Extract<DecodedEvent, { kind: K }> {
  assert.equal(
    e.kind,
    kind,
    `expected ${kind}, got ${e.kind} ${JSON.stringify('error' in e ? e.error : '')}`,
  );
  return e as Extract<DecodedEvent, { kind: K }>;
}
function variableOf(e: DecodedEvent) {
  return decoded(e, 'efi-variable').variable;
}

// ---- decoders ----

describe('firmware events', () => {
  test('S-CRTM version: UCS-2 string, GUID, empty and vendor-defined forms', () => {
    assert.equal(
      decoded(decodeEvent(ev(EV_S_CRTM_VERSION, ucs2('GCE Virtual Firmware v1'))), 'crtm-version').version,
      'GCE Virtual Firmware v1',
    );
    const g = decoded(
      decodeEvent(ev(EV_S_CRTM_VERSION, guid('1e2ed096-30e2-4254-bd89-863bbef82325'))),
      'crtm-version',
    );
    assert.equal(g.guid, '1e2ed096-30e2-4254-bd89-863bbef82325');
    assert.equal(g.version, undefined);
    assert.equal(decoded(decodeEvent(ev(EV_S_CRTM_VERSION, new Uint8Array(2))), 'crtm-version').version, '');
    const vendor = decoded(
      decodeEvent(
        ev(
          EV_S_CRTM_VERSION,
          Uint8Array.from({ length: 40 }, (_, i) => i * 7 + 1),
        ),
      ),
      'crtm-version',
    );
    assert.equal(vendor.version, undefined);
    assert.equal(vendor.guid, undefined);
    assert.match(describeEvent(vendor), /vendor-defined \(40 bytes\)/);
  });

  test('POST code: ASCII label or a firmware blob', () => {
    assert.equal(decoded(decodeEvent(ev(EV_POST_CODE, ascii('ACPI DATA'))), 'post-code').text, 'ACPI DATA');
    const blob = decoded(
      decodeEvent(ev(EV_POST_CODE, cat(u64(0xffa20000), u64(0x4e0000)))),
      'post-code',
    ).blob;
    assert.deepEqual(blob, { base: 0xffa20000n, length: 0x4e0000n });
  });

  test('platform firmware blob and blob2 with its description', () => {
    const b = decoded(
      decodeEvent(ev(EV_EFI_PLATFORM_FIRMWARE_BLOB, cat(u64(0x820000), u64(0xe0000)))),
      'firmware-blob',
    );
    assert.deepEqual(b.blob, { base: 0x820000n, length: 0xe0000n });
    const desc = 'Fv(XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)';
    const b2 = decoded(
      decodeEvent(
        ev(EV_EFI_PLATFORM_FIRMWARE_BLOB2, cat([desc.length], ascii(desc), u64(0xffc00000), u64(0x840000))),
      ),
      'firmware-blob',
    );
    assert.deepEqual(b2.blob, { description: desc, base: 0xffc00000n, length: 0x840000n });
    assert.equal(describeEvent(b2), `${desc} blob 0xffc00000 +0x840000`);
    // A blob with a byte too many is malformed, not silently accepted.
    const bad = decoded(decodeEvent(ev(EV_EFI_PLATFORM_FIRMWARE_BLOB, new Uint8Array(17))), 'raw');
    assert.deepEqual([bad.error?.code, bad.error?.offset], ['trailing-bytes', 16]);
  });

  test('handoff tables name known vendor GUIDs; HANDOFF_TABLES2 keeps its description', () => {
    const t = decoded(
      decodeEvent(
        ev(
          EV_EFI_HANDOFF_TABLES,
          cat(
            u64(2),
            guid('eb9d2d31-2d88-11d3-9a16-0090273fc14d'),
            u64(0x7f0000),
            guid('8868e871-e4f1-11d3-bc22-0080c73c8881'),
            u64(0x7e0000),
          ),
        ),
      ),
      'handoff-tables',
    );
    assert.deepEqual(
      t.tables.map((x) => [x.name, x.address]),
      [
        ['SMBIOS table', 0x7f0000n],
        ['ACPI 2.0 table', 0x7e0000n],
      ],
    );
    const t2 = decoded(
      decodeEvent(ev(EV_EFI_HANDOFF_TABLES2, cat([8], ascii('TdxTable'), u64(1), guid(DISK), u64(0x1000)))),
      'handoff-tables',
    );
    assert.equal(t2.description, 'TdxTable');
    assert.equal(t2.tables[0]?.guid, DISK);
    assert.equal(t2.tables[0]?.name, undefined);
  });

  test('EV_TABLE_OF_DEVICES as a table list when it is one, else opaque', () => {
    decoded(decodeEvent(ev(EV_TABLE_OF_DEVICES, cat(u64(1), guid(DISK), u64(0x5d362020)))), 'handoff-tables');
    const o = decoded(decodeEvent(ev(EV_TABLE_OF_DEVICES, ascii('PCI devices\0\x01\x02'))), 'opaque');
    assert.equal(o.label, 'PCI devices');
  });

  test('EV_NONHOST_*: label kept, bytes kept', () => {
    for (const type of [EV_NONHOST_CODE, EV_NONHOST_CONFIG, EV_NONHOST_INFO]) {
      const data = cat(ascii('GCE NonHostInfo', true), [1], new Uint8Array(15));
      const o = decoded(decodeEvent(ev(type, data)), 'opaque');
      assert.equal(o.label, 'GCE NonHostInfo');
      assert.equal(o.data, data);
    }
    const noLabel = decoded(decodeEvent(ev(EV_NONHOST_INFO, Uint8Array.of(1, 2, 3))), 'opaque');
    assert.equal(noLabel.label, undefined);
    assert.match(describeEvent(noLabel), /3 bytes 010203/);
  });

  test('H-CRTM, EFI/PC actions, omit-boot-device text; non-ASCII action is malformed', () => {
    assert.equal(decoded(decodeEvent(ev(EV_EFI_HCRTM_EVENT, ascii('HCRTM'))), 'text').text, 'HCRTM');
    assert.equal(
      decoded(decodeEvent(ev(EV_EFI_ACTION, ascii('Exit Boot Services Invocation'))), 'text').text,
      'Exit Boot Services Invocation',
    );
    assert.equal(
      decoded(decodeEvent(ev(EV_ACTION, ascii('Start Option ROM Scan'))), 'text').text,
      'Start Option ROM Scan',
    );
    assert.equal(
      decoded(decodeEvent(ev(EV_OMIT_BOOT_DEVICE_EVENTS, ascii('BOOT ATTEMPTS OMITTED'))), 'text').text,
      'BOOT ATTEMPTS OMITTED',
    );
    const bad = decoded(decodeEvent(ev(EV_EFI_ACTION, Uint8Array.of(0x41, 0xff, 0x42))), 'raw');
    assert.equal(bad.error?.code, 'bad-value');
  });

  test('separators: 0 normal; 0xFFFFFFFF and 1 flagged as errors; other values kept', () => {
    const v = (x: number) => decoded(decodeEvent(ev(EV_SEPARATOR, u32(x))), 'separator');
    assert.deepEqual([v(0).value, v(0).error], [0, false]);
    assert.deepEqual([v(0xffffffff).value, v(0xffffffff).error], [0xffffffff, true]);
    assert.deepEqual([v(1).value, v(1).error], [1, true]);
    assert.equal(v(0x4c434257).error, false); // Windows "WBCL"
    assert.match(describeEvent(v(0xffffffff)), /separator 0xffffffff ERROR/);
    assert.equal(decoded(decodeEvent(ev(EV_SEPARATOR, new Uint8Array(3))), 'separator').value, undefined);
  });

  test('EV_NO_ACTION: Spec ID, StartupLocality, SP800-155 by name, unknown', () => {
    const s = decoded(decodeEvent(ev(EV_NO_ACTION, specId())), 'no-action').noAction;
    assert.equal(s.form, 'spec-id');
    if (s.form === 'spec-id') {
      assert.deepEqual(s.algorithms, [
        { algId: 4, digestSize: 20 },
        { algId: 0xb, digestSize: 32 },
      ]);
      assert.equal(s.specVersion, '2.0.2');
      assert.equal(s.uintnSize, 2);
    }
    const l = decoded(
      decodeEvent(ev(EV_NO_ACTION, cat(ascii('StartupLocality', true), [3]))),
      'no-action',
    ).noAction;
    assert.deepEqual(l, { form: 'startup-locality', signature: 'StartupLocality', locality: 3 });
    const sp = decoded(
      decodeEvent(ev(EV_NO_ACTION, cat(ascii('SP800-155 Event3'), new Uint8Array(40)))),
      'no-action',
    );
    assert.deepEqual(sp.noAction, { form: 'named', signature: 'SP800-155 Event3' });
    assert.equal(describeEvent(sp), 'SP800-155 Event3');
    assert.equal(
      decoded(decodeEvent(ev(EV_NO_ACTION, Uint8Array.of(4, 0, 0))), 'no-action').noAction.form,
      'unknown',
    );
    // A Spec ID event declaring 2^32-1 algorithms is refused at the count.
    const huge = decoded(
      decodeEvent(
        ev(EV_NO_ACTION, cat(ascii('Spec ID Event03', true), u32(0), [0, 2, 0, 2], u32(0xffffffff))),
      ),
      'raw',
    );
    assert.deepEqual([huge.error?.code, huge.error?.offset], ['length-too-large', 24]);
  });

  test('EV_EVENT_TAG: TCG_PCClientTaggedEvent when it fits exactly, else opaque text (TDX firmware)', () => {
    const t = decoded(decodeEvent(ev(EV_EVENT_TAG, cat(u32(0x40010001), u32(3), [7, 8, 9]))), 'tagged');
    assert.deepEqual([t.eventId, t.eventData], [0x40010001, Uint8Array.of(7, 8, 9)]);
    assert.equal(describeEvent(t), 'tagged event 0x40010001, 3 bytes');
    const text = decoded(decodeEvent(ev(EV_EVENT_TAG, ascii('LOADED_IMAGE::LoadOptions', true))), 'opaque');
    assert.equal(text.label, 'LOADED_IMAGE::LoadOptions');
    decoded(decodeEvent(ev(EV_EVENT_TAG, cat(u32(1), u32(4), [7, 8, 9]))), 'opaque');
  });

  test('a Windows "WBCL" separator is shown as text', () => {
    assert.equal(describeEvent(decodeEvent(ev(EV_SEPARATOR, ascii('WBCL')))), 'separator 0x4c434257 "WBCL"');
  });

  test('EV_COMPACT_HASH and unknown types stay raw or opaque, never fatal', () => {
    decoded(decodeEvent(ev(EV_COMPACT_HASH, ascii('Dell Configuration Information 1'))), 'opaque');
    const unknown = decoded(decodeEvent(ev(0x12345678, Uint8Array.of(1, 2, 3))), 'raw');
    assert.equal(unknown.error, undefined);
    assert.equal(unknown.typeName, '0x12345678');
  });
});

describe('EFI variables', () => {
  test('SecureBoot, AuditMode: one byte; an empty SecureBoot is "empty"', () => {
    const sb = decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, variable(EFI_GLOBAL, 'SecureBoot', u8(1)), 7));
    const v = variableOf(sb);
    assert.equal(v.name, 'SecureBoot');
    assert.equal(v.guidName, 'EFI_GLOBAL_VARIABLE');
    assert.deepEqual(v.content, { form: 'byte', value: 1 });
    assert.equal(describeEvent(sb), 'SecureBoot = enabled');
    assert.deepEqual(
      variableOf(
        decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, variable(EFI_GLOBAL, 'SecureBoot', new Uint8Array(0)))),
      ).content,
      {
        form: 'empty',
      },
    );
  });

  test('db and KEK: EFI_SIGNATURE_LIST into DER certificates with subject CN; dbx into SHA-256 hashes', () => {
    const a = certificate('Test DB Key A');
    const b = certificate('Test DB Key B');
    const db = variable(
      IMAGE_SECURITY,
      'db',
      cat(signatureList(CERT_X509, [a]), signatureList(CERT_X509, [b])),
    );
    const c = variableOf(decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, db, 7))).content;
    assert.equal(c.form, 'signature-database');
    if (c.form !== 'signature-database') return;
    assert.equal(c.lists.length, 2);
    assert.deepEqual(
      c.lists.map((l) => [l.typeName, l.entries[0]?.certificate?.subjectCN, l.entries[0]?.ownerName]),
      [
        ['EFI_CERT_X509', 'Test DB Key A', 'Microsoft'],
        ['EFI_CERT_X509', 'Test DB Key B', 'Microsoft'],
      ],
    );
    assert.deepEqual(c.lists[0]?.entries[0]?.certificate?.der, a);
    const h1 = new Uint8Array(32).fill(0x11);
    const h2 = new Uint8Array(32).fill(0x22);
    const dbx = variableOf(
      decodeEvent(
        ev(
          EV_EFI_VARIABLE_DRIVER_CONFIG,
          variable(IMAGE_SECURITY, 'dbx', signatureList(CERT_SHA256, [h1, h2], 4)),
        ),
      ),
    );
    assert.equal(dbx.content.form, 'signature-database');
    if (dbx.content.form === 'signature-database') {
      assert.deepEqual(
        dbx.content.lists[0]?.entries.map((e) => e.sha256),
        [h1, h2],
      );
      assert.equal(dbx.content.lists[0]?.header.length, 4);
    }
    const kek = decodeEvent(
      ev(EV_EFI_VARIABLE_DRIVER_CONFIG, variable(EFI_GLOBAL, 'KEK', signatureList(CERT_X509, [a]))),
    );
    assert.equal(describeEvent(kek), 'KEK = 1 cert (Test DB Key A)');
  });

  test('a malformed signature list keeps the variable and says where the list broke', () => {
    const list = signatureList(CERT_SHA256, [new Uint8Array(32)]);
    list.set(u32(20), 24); // SignatureSize below the 16-byte owner GUID... and not a divisor
    const v = variableOf(
      decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, variable(IMAGE_SECURITY, 'dbx', list))),
    );
    assert.equal(v.content.form, 'unparsed');
    if (v.content.form === 'unparsed')
      assert.deepEqual([v.content.error.code, v.content.error.offset], ['bad-value', 32 + 6 + 24]);
  });

  test('a certificate inspector is optional and its failures are contained', () => {
    const cert = certificate('Inspected');
    const data = variable(IMAGE_SECURITY, 'db', signatureList(CERT_X509, [cert]));
    const seen: Uint8Array[] = [];
    const withDetails = variableOf(
      decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, data), undefined, {
        inspectCertificate: (der) => {
          seen.push(der);
          return { issuer: 'CN=Issuer CA' };
        },
      }),
    );
    assert.deepEqual(seen, [cert]);
    if (withDetails.content.form === 'signature-database') {
      assert.deepEqual(withDetails.content.lists[0]?.entries[0]?.certificate?.details, {
        issuer: 'CN=Issuer CA',
      });
    } else assert.fail('not a signature database');
    const throwing = variableOf(
      decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, data), undefined, {
        inspectCertificate: () => {
          throw new Error('boom');
        },
      }),
    );
    assert.equal(throwing.content.form, 'signature-database');
  });

  test('EV_EFI_VARIABLE_AUTHORITY: EFI_SIGNATURE_DATA, a bare certificate (shim), SbatLevel text', () => {
    const cert = certificate('Microsoft Corporation UEFI CA 2011', 300);
    const withOwner = variableOf(
      decodeEvent(
        ev(EV_EFI_VARIABLE_AUTHORITY, variable(IMAGE_SECURITY, 'db', cat(guid(MICROSOFT), cert)), 7),
      ),
    );
    assert.equal(withOwner.content.form, 'signature-data');
    if (withOwner.content.form === 'signature-data') {
      assert.equal(withOwner.content.signature.ownerName, 'Microsoft');
      assert.equal(withOwner.content.signature.certificate?.subjectCN, 'Microsoft Corporation UEFI CA 2011');
    }
    const bare = decodeEvent(ev(EV_EFI_VARIABLE_AUTHORITY, variable(SHIM_LOCK, 'Shim', cert), 7));
    const b = variableOf(bare);
    if (b.content.form === 'signature-data') {
      assert.equal(b.content.signature.owner, undefined);
      assert.deepEqual(b.content.signature.certificate?.der, cert);
    } else assert.fail(`bare certificate decoded as ${b.content.form}`);
    assert.equal(describeEvent(bare), 'Shim = cert Microsoft Corporation UEFI CA 2011');
    const sbat = variableOf(
      decodeEvent(
        ev(
          EV_EFI_VARIABLE_AUTHORITY,
          variable(SHIM_LOCK, 'SbatLevel', ascii('sbat,1,2022111500\nshim,2\ngrub,3\n')),
        ),
      ),
    );
    assert.equal(sbat.content.form, 'sbat');
    if (sbat.content.form === 'sbat') {
      assert.deepEqual(
        sbat.content.entries.map((e) => [e.component, e.generation]),
        [
          ['sbat', '1'],
          ['shim', '2'],
          ['grub', '3'],
        ],
      );
    }
  });

  test('BootOrder and Boot#### load options with description and device path', () => {
    const order = variableOf(
      decodeEvent(
        ev(EV_EFI_VARIABLE_BOOT, variable(EFI_GLOBAL, 'BootOrder', cat(u16(3), u16(0x1f), u16(0))), 1),
      ),
    );
    assert.deepEqual(order.content, { form: 'boot-order', order: [3, 0x1f, 0] });
    const optional = Uint8Array.of(9, 8, 7);
    const e = decodeEvent(
      ev(
        EV_EFI_VARIABLE_BOOT2,
        variable(EFI_GLOBAL, 'Boot0001', loadOption(1, 'UEFI OS', diskPath, optional)),
        1,
      ),
    );
    const v = variableOf(e);
    assert.equal(v.content.form, 'load-option');
    if (v.content.form !== 'load-option') return;
    assert.equal(v.content.option.description, 'UEFI OS');
    assert.equal(v.content.option.active, true);
    assert.equal(v.content.option.devicePath.text, DISK_PATH_TEXT);
    assert.deepEqual(v.content.option.optionalData, optional);
    assert.equal(describeEvent(e), `Boot0001 = "UEFI OS" ${DISK_PATH_TEXT}`);
    const inactive = variableOf(
      decodeEvent(ev(EV_EFI_VARIABLE_BOOT, variable(EFI_GLOBAL, 'Boot0002', loadOption(0, 'Off', END)))),
    );
    assert.equal(inactive.content.form === 'load-option' && inactive.content.option.active, false);
    // FilePathListLength past the end: the variable decodes, its content says where it broke.
    const broken = loadOption(1, 'X', diskPath);
    broken.set(u16(0xffff), 4);
    const bv = variableOf(decodeEvent(ev(EV_EFI_VARIABLE_BOOT, variable(EFI_GLOBAL, 'Boot0003', broken))));
    assert.equal(bv.content.form === 'unparsed' && bv.content.error.code, 'length-too-large');
  });

  test('the UEFI_VARIABLE_DATA header itself is bounds-checked', () => {
    const data = variable(EFI_GLOBAL, 'SecureBoot', u8(1));
    const longName = data.slice();
    longName.set(u64(0xffffffffffffffffn), 16);
    const a = decoded(decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, longName)), 'raw');
    assert.deepEqual([a.error?.code, a.error?.offset], ['length-too-large', 16]);
    const longData = data.slice();
    longData.set(u64(2n ** 40n), 24);
    const b = decoded(decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, longData)), 'raw');
    assert.deepEqual([b.error?.code, b.error?.offset], ['length-too-large', 24]);
    // Bytes after the declared structure are reported, not fatal (shim 15 pads).
    const padded = variableOf(decodeEvent(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, cat(data, new Uint8Array(6)))));
    assert.equal(padded.trailingBytes, 6);
  });
});

describe('device paths', () => {
  test('hard drive, file path, PCI, ACPI as EDK2 text', () => {
    const p = decodeDevicePath(diskPath);
    assert.equal(p.text, DISK_PATH_TEXT);
    assert.equal(p.error, undefined);
    assert.deepEqual(
      p.nodes.map((n) => [n.type, n.subType]),
      [
        [2, 1],
        [1, 1],
        [4, 1],
        [4, 4],
        [0x7f, 0xff],
      ],
    );
  });

  test('MAC, IPv4, URI, SATA, NVMe, USB, vendor, media and unknown nodes; instances', () => {
    const mac = node(3, 11, cat(Uint8Array.of(0x0c, 0xc4, 0x7a, 0xff, 0x60, 0x1c), new Uint8Array(26), [1]));
    const ip = node(3, 12, cat([10, 0, 0, 2], [10, 0, 0, 1], u16(0), u16(0), u16(6), [1]));
    const uri = node(3, 24, ascii('http://192.0.2.1/boot.efi'));
    const sata = node(3, 18, cat(u16(2), u16(0xffff), u16(0)));
    const nvme = node(3, 23, cat(u32(1), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)));
    const usb = node(3, 5, Uint8Array.of(3, 0));
    const venHw = node(1, 4, guid(DISK));
    const venMsg = node(3, 10, guid('e0c14753-f9be-11d2-9a0c-0090273fc14d'));
    const fv = node(4, 7, guid(DISK));
    const fvFile = node(4, 6, guid(PART));
    const acpi = node(2, 1, cat(u32(0x050141d0), u32(1)));
    const unknown = node(9, 9, Uint8Array.of(0xab, 0xcd));
    const instanceEnd = node(0x7f, 0x01, new Uint8Array(0));
    const p = decodeDevicePath(
      cat(mac, ip, uri, instanceEnd, sata, nvme, usb, venHw, venMsg, fv, fvFile, acpi, unknown, END),
    );
    assert.equal(
      p.text,
      'MAC(0cc47aff601c,0x1)/IPv4(10.0.0.1,TCP,Static,10.0.0.2)/Uri(http://192.0.2.1/boot.efi),' +
        `Sata(0x2,0xffff,0x0)/NVMe(0x1,0102030405060708)/USB(0x3,0x0)/VenHw(${DISK})/VenMsg(PcAnsi)/Fv(${DISK})/FvFile(${PART})/Acpi(PNP0501,0x1)/Path(9,9,abcd)`,
    );
  });

  test('a malformed node ends the path with an error and an offset, keeping what came before', () => {
    const zeroLen = cat(pciRoot, Uint8Array.of(1, 1, 0, 0, 0, 0));
    const p = decodeDevicePath(zeroLen, 100);
    assert.equal(p.nodes.length, 1);
    assert.deepEqual(p.error?.offset, 100 + pciRoot.length);
    assert.equal(p.text, 'PciRoot(0x0)/<malformed>');
    const tooLong = cat(pciRoot, Uint8Array.of(4, 4, 0xff, 0xff));
    assert.equal(decodeDevicePath(tooLong).error?.offset, pciRoot.length);
    const cutHeader = cat(pciRoot, Uint8Array.of(4, 4));
    assert.equal(decodeDevicePath(cutHeader).error?.offset, pciRoot.length);
  });

  test('node count is capped', () => {
    const many = cat(...Array.from({ length: 600 }, () => node(1, 5, u32(0))));
    const p = decodeDevicePath(many);
    assert.equal(p.nodes.length, 512);
    assert.match(p.error?.message ?? '', /more than 512 nodes/);
  });
});

describe('image loads and GPT', () => {
  test('UEFI_IMAGE_LOAD_EVENT: location, length, device path; the Authenticode digest is the event digest', () => {
    for (const type of [
      EV_EFI_BOOT_SERVICES_APPLICATION,
      EV_EFI_BOOT_SERVICES_DRIVER,
      EV_EFI_RUNTIME_SERVICES_DRIVER,
    ]) {
      const digests = [{ bank: 'sha256', digest: new Uint8Array(32).fill(0xaa) }];
      const e = decoded(decodeEvent({ pcr: 4, type, data: imageLoad(diskPath), digests }), 'image-load');
      assert.equal(e.image.location, 0x7e000000n);
      assert.equal(e.image.length, 0x1b000n);
      assert.equal(e.image.devicePath.text, DISK_PATH_TEXT);
      assert.deepEqual(e.authenticode, digests);
      assert.equal(
        describeEvent(e),
        `${DISK_PATH_TEXT} 0x1b000 bytes, authenticode sha256:aaaaaaaaaaaaaaaa…`,
      );
    }
    // shim logs struct padding after an empty path: kept as trailingBytes.
    const shim = decoded(
      decodeEvent(ev(EV_EFI_BOOT_SERVICES_APPLICATION, imageLoad(new Uint8Array(0), new Uint8Array(9)))),
      'image-load',
    );
    assert.equal(shim.image.trailingBytes, 9);
    const huge = imageLoad(diskPath);
    huge.set(u64(2n ** 63n), 24);
    const bad = decoded(decodeEvent(ev(EV_EFI_BOOT_SERVICES_APPLICATION, huge)), 'raw');
    assert.deepEqual([bad.error?.code, bad.error?.offset], ['length-too-large', 24]);
  });

  test('UEFI_GPT_DATA: header and partitions with type, unique GUID, LBAs and name', () => {
    const data = gpt([
      { type: ESP, unique: PART, first: 2048, last: 1050623, name: 'EFI System' },
      {
        type: '0fc63daf-8483-4772-8e79-3d69d8477de4',
        unique: DISK,
        first: 1050624,
        last: 4194270,
        name: 'root',
      },
    ]);
    const g = decoded(decodeEvent(ev(EV_EFI_GPT_EVENT, data, 5)), 'gpt').gpt;
    assert.equal(g.header.diskGuid, DISK);
    assert.equal(g.header.lastUsableLba, 0x3fffden);
    assert.deepEqual(
      g.partitions.map((p) => [p.typeName, p.uniqueGuid, p.startingLba, p.endingLba, p.name]),
      [
        ['EFI system partition', PART, 2048n, 1050623n, 'EFI System'],
        ['Linux filesystem', DISK, 1050624n, 4194270n, 'root'],
      ],
    );
    // Larger entries (256 bytes) are legal.
    assert.equal(
      decoded(
        decodeEvent(
          ev(EV_EFI_GPT_EVENT, gpt([{ type: ESP, unique: PART, first: 1, last: 2, name: 'x' }], 256)),
        ),
        'gpt',
      ).gpt.partitions.length,
      1,
    );
  });

  test('GPT: bad signature, entry size 0, and a partition count past the data are refused', () => {
    const good = gpt([{ type: ESP, unique: PART, first: 1, last: 2, name: 'x' }]);
    const sig = good.slice();
    sig[0] = 0x58;
    assert.deepEqual(pick(decodeEvent(ev(EV_EFI_GPT_EVENT, sig))), ['bad-signature', 0]);
    const zero = good.slice();
    zero.set(u32(0), 84);
    assert.deepEqual(pick(decodeEvent(ev(EV_EFI_GPT_EVENT, zero))), ['bad-value', 84]);
    const count = good.slice();
    count.set(u64(2n ** 62n), 92);
    assert.deepEqual(pick(decodeEvent(ev(EV_EFI_GPT_EVENT, count))), ['length-too-large', 92]);
  });
});

function pick(e: DecodedEvent): [string | undefined, number | undefined] {
  const r = decoded(e, 'raw');
  return [r.error?.code, r.error?.offset];
}

describe('EV_IPL', () => {
  test('GRUB commands and command lines, with the bytes GRUB hashed', () => {
    const cmd = decoded(
      decodeEvent(ev(EV_IPL, ascii('grub_cmd: linux /vmlinuz root=/dev/sda1', true), 8)),
      'ipl',
    ).ipl;
    assert.equal(cmd.form, 'grub-command');
    assert.equal(cmd.text, 'linux /vmlinuz root=/dev/sda1');
    assert.deepEqual(cmd.measured, ascii('linux /vmlinuz root=/dev/sda1'));
    const cmdline = decoded(
      decodeEvent(ev(EV_IPL, ascii('kernel_cmdline: /vmlinuz ro quiet', true), 8)),
      'ipl',
    ).ipl;
    assert.deepEqual([cmdline.form, cmdline.text], ['grub-kernel-cmdline', '/vmlinuz ro quiet']);
    const legacy = decoded(decodeEvent(ev(EV_IPL, ascii('grub_cmd set pager=1', true), 8)), 'ipl').ipl;
    assert.deepEqual([legacy.form, legacy.measured], ['grub-legacy-command', ascii('set pager=1', true)]);
    const legacyCmdline = decoded(
      decodeEvent(ev(EV_IPL, ascii('grub_kernel_cmdline /vmlinuz ro', true), 8)),
      'ipl',
    ).ipl;
    assert.deepEqual(
      [legacyCmdline.form, legacyCmdline.measured],
      ['grub-legacy-kernel-cmdline', ascii('/vmlinuz ro')],
    );
  });

  test('systemd-boot UCS-2 strings, shim MokList names, GRUB file loads', () => {
    const sd = decoded(decodeEvent(ev(EV_IPL, ucs2('initrd=\\initrd.img root=/dev/sda2'), 12)), 'ipl').ipl;
    assert.deepEqual([sd.form, sd.text], ['systemd-boot', 'initrd=\\initrd.img root=/dev/sda2']);
    for (const name of ['MokList', 'MokListX', 'MokListTrusted', 'SbatLevel']) {
      const m = decoded(decodeEvent(ev(EV_IPL, ascii(name, true), 14)), 'ipl').ipl;
      assert.deepEqual([m.form, m.text, m.measured], ['shim-variable', name, undefined]);
    }
    const file = decoded(decodeEvent(ev(EV_IPL, ascii('(hd0,gpt2)/grub/grub.cfg', true), 9)), 'ipl').ipl;
    assert.deepEqual([file.form, file.measured], ['grub-file', undefined]);
    assert.equal(
      decoded(decodeEvent(ev(EV_IPL, Uint8Array.of(0x55, 0xaa, 0x01), 4)), 'ipl').ipl.form,
      'binary',
    );
  });
});

// ---- digest checks and quirks ----

describe('digest checks', () => {
  test('types whose digest is a hash of their data: match, mismatch, unhashable bank', () => {
    assert.deepEqual(checkEventDigest(ev(EV_SEPARATOR, u32(0)), hash), { checked: true, ok: true });
    const tampered = ev(
      EV_EFI_ACTION,
      ascii('Exit Boot Services Invocation'),
      5,
      digestsOf(ascii('Exit Boot Services Returned')),
    );
    assert.deepEqual(checkEventDigest(tampered, hash), {
      checked: true,
      ok: false,
      mismatchedBanks: ['sha1', 'sha256'],
    });
    const oneBad = ev(EV_EFI_GPT_EVENT, gpt([]), 5, [
      ...digestsOf(gpt([]), ['sha1']),
      { bank: 'sha256', digest: new Uint8Array(32) },
    ]);
    assert.deepEqual(checkEventDigest(oneBad, hash).mismatchedBanks, ['sha256']);
    const sm3 = ev(EV_SEPARATOR, u32(0), 0, [{ bank: 'sm3_256', digest: new Uint8Array(32) }]);
    assert.deepEqual(checkEventDigest(sm3, hash), { checked: false, ok: false });
    assert.deepEqual(checkEventDigest(ev(EV_SEPARATOR, u32(0), 0, []), hash), { checked: false, ok: false });
  });

  test('types whose digest covers content outside the log are not checked', () => {
    for (const [type, data] of [
      [EV_EFI_BOOT_SERVICES_APPLICATION, imageLoad(diskPath)],
      [EV_POST_CODE, ascii('ACPI DATA')],
      [EV_IPL, ascii('(hd0,gpt1)/vmlinuz', true)],
      [EV_NO_ACTION, specId()],
    ] as const) {
      assert.equal(
        checkEventDigest(ev(type, data, 0, digestsOf(new Uint8Array(1))), hash).checked,
        false,
        `type ${type}`,
      );
    }
  });

  test('DRIVER_CONFIG, AUTHORITY and BOOT2 hash the whole UEFI_VARIABLE_DATA; BOOT hashes VariableData', () => {
    const sb = variable(EFI_GLOBAL, 'SecureBoot', u8(1));
    assert.equal(checkEventDigest(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, sb), hash).ok, true);
    assert.equal(
      checkEventDigest(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, sb, 7, digestsOf(u8(1))), hash).ok,
      false,
    );
    const opt = loadOption(1, 'UEFI OS', diskPath);
    const boot = variable(EFI_GLOBAL, 'Boot0001', opt);
    assert.deepEqual(checkEventDigest(ev(EV_EFI_VARIABLE_BOOT, boot, 1, digestsOf(opt)), hash), {
      checked: true,
      ok: true,
    });
    assert.deepEqual(checkEventDigest(ev(EV_EFI_VARIABLE_BOOT2, boot, 1, digestsOf(boot)), hash), {
      checked: true,
      ok: true,
    });
    assert.equal(checkEventDigest(ev(EV_EFI_VARIABLE_BOOT2, boot, 1, digestsOf(opt)), hash).ok, false);
  });

  test('GRUB and systemd-boot strings are checked by their loader convention', () => {
    const g = ascii('grub_cmd: set root=hd0', true);
    assert.deepEqual(checkEventDigest(ev(EV_IPL, g, 8, digestsOf(ascii('set root=hd0'))), hash), {
      checked: true,
      ok: true,
    });
    assert.equal(checkEventDigest(ev(EV_IPL, g, 8, digestsOf(g)), hash).ok, false);
    const sd = ucs2('root=/dev/sda2');
    assert.equal(checkEventDigest(ev(EV_IPL, sd, 12), hash).ok, true);
  });

  test('decodeEvent attaches the check when given a hash; describeDigestCheck names it', () => {
    const e = decodeEvent(ev(EV_SEPARATOR, u32(0), 4, digestsOf(u32(1))), hash);
    assert.deepEqual(e.digestCheck, { checked: true, ok: false, mismatchedBanks: ['sha1', 'sha256'] });
    assert.equal(describeDigestCheck(e.digestCheck), 'MISMATCH sha1,sha256');
    assert.equal(describeEvent(e), 'separator 0x0');
    assert.equal(describeDigestCheck(decodeEvent(ev(EV_SEPARATOR, u32(0)), hash).digestCheck), 'ok');
    assert.equal(
      describeDigestCheck(decodeEvent(ev(EV_POST_CODE, ascii('ACPI DATA')), hash).digestCheck),
      '-',
    );
    assert.equal(decodeEvent(ev(EV_SEPARATOR, u32(0))).digestCheck, undefined);
  });

  test('every quirk in the table is documented and names the corpus logs that need it', () => {
    assert.ok(DIGEST_QUIRKS.length >= 2);
    const ids = new Set(DIGEST_QUIRKS.map((q) => q.id));
    assert.equal(ids.size, DIGEST_QUIRKS.length);
    for (const q of DIGEST_QUIRKS) {
      assert.ok(q.description.length > 20 && q.eventTypes.length > 0 && q.seenIn.length > 0, q.id);
    }
  });

  test('quirk variable-boot-whole-structure: BOOT digest over the whole UEFI_VARIABLE_DATA', () => {
    const boot = variable(EFI_GLOBAL, 'BootOrder', cat(u16(1), u16(0)));
    assert.deepEqual(checkEventDigest(ev(EV_EFI_VARIABLE_BOOT, boot, 1, digestsOf(boot)), hash), {
      checked: true,
      ok: true,
      quirk: 'variable-boot-whole-structure',
    });
    // Not for other variable types, and not without the table.
    assert.equal(
      checkEventDigest(ev(EV_EFI_VARIABLE_DRIVER_CONFIG, boot, 1, digestsOf(cat(u16(1), u16(0)))), hash).ok,
      false,
    );
    assert.equal(checkEventDigest(ev(EV_EFI_VARIABLE_BOOT, boot, 1, digestsOf(boot)), hash, []).ok, false);
  });

  test('quirk shim-authority-padded-size: AUTHORITY digest over all but the last byte of padded data', () => {
    const cert = certificate('Canonical Ltd. Master Certificate Authority', 300);
    const padded = cat(variable(SHIM_LOCK, 'Shim', cert), Uint8Array.of(0, 0, 0, 0, 0, 0xaf));
    const pre = padded.subarray(0, padded.length - 1);
    assert.deepEqual(checkEventDigest(ev(EV_EFI_VARIABLE_AUTHORITY, padded, 7, digestsOf(pre)), hash), {
      checked: true,
      ok: true,
      quirk: 'shim-authority-padded-size',
    });
    // Only when the structure is padded: an unpadded event hashed minus one byte stays a mismatch.
    const unpadded = variable(SHIM_LOCK, 'Shim', cert);
    assert.equal(
      checkEventDigest(
        ev(EV_EFI_VARIABLE_AUTHORITY, unpadded, 7, digestsOf(unpadded.subarray(0, unpadded.length - 1))),
        hash,
      ).ok,
      false,
    );
    // Spec match first: a correct AUTHORITY event reports no quirk.
    assert.deepEqual(checkEventDigest(ev(EV_EFI_VARIABLE_AUTHORITY, padded, 7, digestsOf(padded)), hash), {
      checked: true,
      ok: true,
    });
  });
});

// ---- hostile input ----

/** One well-formed sample per decoder, to truncate and mutate. */
const SAMPLES: [string, DecodeInput][] = [
  ['crtm-version', ev(EV_S_CRTM_VERSION, ucs2('1.0'))],
  ['post-code-blob', ev(EV_POST_CODE, cat(u64(1), u64(2)))],
  ['blob', ev(EV_EFI_PLATFORM_FIRMWARE_BLOB, cat(u64(1), u64(2)))],
  ['blob2', ev(EV_EFI_PLATFORM_FIRMWARE_BLOB2, cat([4], ascii('abcd'), u64(1), u64(2)))],
  ['secureboot', ev(EV_EFI_VARIABLE_DRIVER_CONFIG, variable(EFI_GLOBAL, 'SecureBoot', u8(1)))],
  [
    'db',
    ev(
      EV_EFI_VARIABLE_DRIVER_CONFIG,
      variable(
        IMAGE_SECURITY,
        'db',
        cat(signatureList(CERT_X509, [certificate('A')]), signatureList(CERT_SHA256, [new Uint8Array(32)])),
      ),
    ),
  ],
  [
    'authority',
    ev(
      EV_EFI_VARIABLE_AUTHORITY,
      variable(IMAGE_SECURITY, 'db', cat(guid(MICROSOFT), certificate('B', 300))),
    ),
  ],
  [
    'boot',
    ev(
      EV_EFI_VARIABLE_BOOT,
      variable(EFI_GLOBAL, 'Boot0001', loadOption(1, 'UEFI OS', diskPath, Uint8Array.of(1))),
    ),
  ],
  ['bootorder', ev(EV_EFI_VARIABLE_BOOT, variable(EFI_GLOBAL, 'BootOrder', cat(u16(1), u16(2))))],
  ['image', ev(EV_EFI_BOOT_SERVICES_APPLICATION, imageLoad(diskPath))],
  ['gpt', ev(EV_EFI_GPT_EVENT, gpt([{ type: ESP, unique: PART, first: 1, last: 2, name: 'x' }]))],
  ['handoff', ev(EV_EFI_HANDOFF_TABLES, cat(u64(1), guid(DISK), u64(5)))],
  ['handoff2', ev(EV_EFI_HANDOFF_TABLES2, cat([3], ascii('abc'), u64(1), guid(DISK), u64(5)))],
  ['spec-id', ev(EV_NO_ACTION, specId())],
  ['locality', ev(EV_NO_ACTION, cat(ascii('StartupLocality', true), [3]))],
  ['ipl', ev(EV_IPL, ascii('grub_cmd: x', true))],
];

/** Small deterministic PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function total(input: DecodeInput): DecodedEvent {
  let e: DecodedEvent | undefined;
  assert.doesNotThrow(() => {
    e = decodeEvent(input, hash);
  });
  assert.ok(e);
  assert.notEqual(
    e.kind === 'raw' ? e.error?.code : undefined,
    'decoder-bug',
    JSON.stringify(e.kind === 'raw' && e.error),
  );
  const line = describeEvent(e);
  assert.ok(!line.includes('\n'));
  return e;
}

describe('hostile input', () => {
  test('every sample decodes cleanly as built', () => {
    for (const [name, input] of SAMPLES) {
      const e = total(input);
      assert.ok(!(e.kind === 'raw' && e.error), `${name}: ${JSON.stringify(e.kind === 'raw' && e.error)}`);
    }
  });

  test('truncated at every offset: never throws, structured samples report an error with an in-range offset', () => {
    let refused = 0;
    for (const [, input] of SAMPLES) {
      for (let n = 0; n < input.data.length; n++) {
        const e = total({ ...input, data: input.data.slice(0, n) });
        if (e.kind === 'raw' && e.error) {
          refused++;
          assert.ok(e.error.offset >= 0 && e.error.offset <= n, `offset ${e.error.offset} outside 0..${n}`);
        }
      }
    }
    // Most truncations of fixed layouts must be refused (a check that can never fire would fail here).
    assert.ok(refused > 500, `only ${refused} truncations refused`);
  });

  test('random byte mutations never throw (20,000 cases)', () => {
    const rnd = prng(0x4e5);
    for (let i = 0; i < 20_000; i++) {
      const [, input] = SAMPLES[i % SAMPLES.length]!;
      const data = input.data.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < flips && data.length > 0; k++) {
        const at = Math.floor(rnd() * data.length);
        // Favour the values that break length arithmetic.
        const r = rnd();
        data[at] = r < 0.3 ? 0xff : r < 0.5 ? 0 : Math.floor(rnd() * 256);
      }
      total({ ...input, data });
    }
  });

  test('every event type, random data: never throws', () => {
    const rnd = prng(7);
    const types = [
      ...new Set(SAMPLES.map(([, s]) => s.type)),
      EV_SEPARATOR,
      EV_EFI_ACTION,
      EV_NONHOST_INFO,
      EV_TABLE_OF_DEVICES,
      EV_COMPACT_HASH,
      EV_EFI_HCRTM_EVENT,
      EV_OMIT_BOOT_DEVICE_EVENTS,
      EV_EVENT_TAG,
      EV_EFI_VARIABLE_BOOT2,
      EV_EFI_RUNTIME_SERVICES_DRIVER,
      0x80000010,
      0xdeadbeef,
    ];
    for (const type of types) {
      for (let i = 0; i < 300; i++) {
        const data = Uint8Array.from({ length: Math.floor(rnd() * 96) }, () =>
          rnd() < 0.4 ? 0xff : Math.floor(rnd() * 256),
        );
        total({ pcr: 0, type, data, digests: digestsOf(data) });
      }
    }
  });

  test('huge declared lengths are refused at the length field', () => {
    const cases: [string, DecodeInput, string, number][] = [
      [
        'handoff count',
        ev(EV_EFI_HANDOFF_TABLES, cat(u64(2n ** 64n - 1n), guid(DISK), u64(5))),
        'length-too-large',
        0,
      ],
      ['blob2 description', ev(EV_EFI_PLATFORM_FIRMWARE_BLOB2, cat([255], ascii('ab'))), 'truncated', 1],
      [
        'signature list size',
        ev(
          EV_EFI_VARIABLE_AUTHORITY,
          variable(IMAGE_SECURITY, 'db', cat(guid(CERT_X509), u32(0xffffffff), u32(0), u32(16))),
        ),
        'length-too-large',
        32 + 4 + 16,
      ],
    ];
    for (const [name, input, code, offset] of cases) {
      const e = total(input);
      if (name === 'signature list size') {
        // The AUTHORITY decoder reads a single EFI_SIGNATURE_DATA; the same bytes as a db list are refused in the list.
        const db = total({ ...input, type: EV_EFI_VARIABLE_DRIVER_CONFIG });
        const c = variableOf(db).content;
        assert.deepEqual(
          c.form === 'unparsed' ? [c.error.code, c.error.offset] : c.form,
          [code, offset],
          name,
        );
        continue;
      }
      assert.deepEqual(pick(e), [code, offset], name);
    }
  });
});
