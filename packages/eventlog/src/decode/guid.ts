// EFI_GUID (mixed-endian, UEFI spec appendix A) formatting and the GUIDs worth naming in a log.

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Canonical lowercase text of the 16-byte EFI_GUID at `o` (caller checked bounds). */
export function guidText(b: Uint8Array, o = 0): string {
  const h = (i: number) => HEX[b[o + i]!]!;
  return (
    h(3) +
    h(2) +
    h(1) +
    h(0) +
    '-' +
    h(5) +
    h(4) +
    '-' +
    h(7) +
    h(6) +
    '-' +
    h(8) +
    h(9) +
    '-' +
    h(10) +
    h(11) +
    h(12) +
    h(13) +
    h(14) +
    h(15)
  );
}

export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
export const SHIM_LOCK = '605dab50-e046-4300-abb6-3dd810dd8b23';
export const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
export const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';

/** GUIDs with a well-known meaning: variable vendors, signature types, owners, config tables, partition types. */
export const KNOWN_GUIDS: ReadonlyMap<string, string> = new Map([
  // Variable vendors
  [EFI_GLOBAL_VARIABLE, 'EFI_GLOBAL_VARIABLE'],
  [EFI_IMAGE_SECURITY_DATABASE, 'EFI_IMAGE_SECURITY_DATABASE'],
  [SHIM_LOCK, 'SHIM_LOCK'],
  ['4a67b082-0a4c-41cf-b6c7-440b29bb8c4f', 'systemd LoaderInfo'],
  // EFI_SIGNATURE_LIST types (UEFI 32.4.1)
  [EFI_CERT_SHA256, 'EFI_CERT_SHA256'],
  ['3c5766e8-269c-4e34-aa14-ed776e85b3b6', 'EFI_CERT_RSA2048'],
  ['e2b36190-879b-4a3d-ad8d-f2e7bba32784', 'EFI_CERT_RSA2048_SHA256'],
  ['826ca512-cf10-4ac9-b187-be01496631bd', 'EFI_CERT_SHA1'],
  ['67f8444f-8743-48f1-a328-1eaab8736080', 'EFI_CERT_RSA2048_SHA1'],
  [EFI_CERT_X509, 'EFI_CERT_X509'],
  ['0b6e5233-a65c-44c9-9407-d9ab83bfc8bd', 'EFI_CERT_SHA224'],
  ['ff3e5307-9fd0-48c9-85f1-8ad56c701e01', 'EFI_CERT_SHA384'],
  ['093e0fae-a6c4-4f50-9f1b-d41b2f8c3b4a', 'EFI_CERT_SHA512'],
  ['3bd2a492-96c0-4079-b420-fcf98ef103ed', 'EFI_CERT_X509_SHA256'],
  ['7076876e-80c2-4ee6-aad2-28b349a6865b', 'EFI_CERT_X509_SHA384'],
  ['446dbf63-2502-4cda-bcfa-2465d2b0fe9d', 'EFI_CERT_X509_SHA512'],
  ['4aafd29d-68df-49ee-8aa9-347d375665a7', 'EFI_CERT_TYPE_PKCS7'],
  // Signature owners
  ['77fa9abd-0359-4d32-bd60-28f4e78f784b', 'Microsoft'],
  // EFI configuration tables (handoff tables)
  ['8868e871-e4f1-11d3-bc22-0080c73c8881', 'ACPI 2.0 table'],
  ['eb9d2d30-2d88-11d3-9a16-0090273fc14d', 'ACPI 1.0 table'],
  ['eb9d2d31-2d88-11d3-9a16-0090273fc14d', 'SMBIOS table'],
  ['f2fd1544-9794-4a2c-992e-e5bbcf20e394', 'SMBIOS 3 table'],
  ['eb9d2d2f-2d88-11d3-9a16-0090273fc14d', 'MPS table'],
  ['eb9d2d32-2d88-11d3-9a16-0090273fc14d', 'SAL system table'],
  ['05ad34ba-6f02-4214-952e-4da0398e2bb9', 'DXE services table'],
  ['7739f24c-93d7-11d4-9a3a-0090273fc14d', 'HOB list'],
  ['4c19049f-4137-4dd3-9c10-8b97a83ffdfa', 'Memory type information'],
  ['49152e77-1ada-4764-b7a2-7afefed95e8b', 'Debug image info table'],
  ['b122a263-3661-4f68-9929-78f8b0d62180', 'EFI system resource table'],
  ['dcfa911d-26eb-469f-a220-38b7dc461220', 'Memory attributes table'],
  ['eb66918a-7eef-402a-842e-931d21c38ae9', 'RT properties table'],
  ['1e2ed096-30e2-4254-bd89-863bbef82325', 'TCG2 final events table'],
  ['ee4e5898-3914-4259-9d6e-dc7bd79403cf', 'LZMA custom decompress'],
  // Messaging vendor device path nodes
  ['e0c14753-f9be-11d2-9a0c-0090273fc14d', 'PcAnsi'],
  ['dfa66065-b419-11d3-9a2d-0090273fc14d', 'VT100'],
  ['7baec70b-57e0-4c76-8e87-2f9e28088343', 'VT100+'],
  ['ad15a0d6-8bec-4acf-a073-d01de77e2d88', 'VT-UTF8'],
  ['37499a9d-542f-4c89-a026-35da142094e4', 'UartFlowCtrl'],
  ['d487ddb4-008b-11d9-afdc-001083ffca4d', 'SAS'],
  // GPT partition types
  ['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'EFI system partition'],
  ['21686148-6449-6e6f-744e-656564454649', 'BIOS boot partition'],
  ['0fc63daf-8483-4772-8e79-3d69d8477de4', 'Linux filesystem'],
  ['4f68bce3-e8cd-4db1-96e7-fbcaf984b709', 'Linux root (x86-64)'],
  ['0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', 'Linux swap'],
  ['e6d6d379-f507-44c2-a23c-238f2a3df928', 'Linux LVM'],
  ['a19d880f-05fc-4d3b-a006-743f0f84911e', 'Linux RAID'],
  ['bc13c2ff-59e6-4262-a352-b275fd6f7172', 'Linux extended boot'],
  ['ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', 'Microsoft basic data'],
  ['e3c9e316-0b5c-4db8-817d-f92df00215ae', 'Microsoft reserved'],
  ['de94bba4-06d1-4d40-a16a-bfd50179d6ac', 'Windows recovery'],
  ['fe3a2a5d-4f32-41a7-b725-accc3285a309', 'ChromeOS kernel'],
  ['3cb8e202-3b7e-47dd-8a3c-7ff2a13cfcec', 'ChromeOS rootfs'],
]);

export function guidName(guid: string): string | undefined {
  return KNOWN_GUIDS.get(guid);
}
