// UEFI_GPT_DATA (PC Client PFP 10.2.7): the GPT header as read from disk (92 bytes, UEFI 5.3.2)
// followed by the number of partitions and the non-empty partition entries.
import { guidName, guidText } from './guid.ts';
import { DecodeFault, Reader } from './reader.ts';
import { ucs2z } from './text.ts';
import { trailing } from './firmware.ts';

export interface GptHeader {
  readonly revision: number;
  readonly headerSize: number;
  readonly myLba: bigint;
  readonly alternateLba: bigint;
  readonly firstUsableLba: bigint;
  readonly lastUsableLba: bigint;
  readonly diskGuid: string;
  readonly partitionEntryLba: bigint;
  readonly numberOfPartitionEntries: number;
  readonly sizeOfPartitionEntry: number;
}

export interface GptPartition {
  readonly typeGuid: string;
  readonly typeName: string | undefined;
  readonly uniqueGuid: string;
  readonly startingLba: bigint;
  readonly endingLba: bigint;
  readonly attributes: bigint;
  readonly name: string;
}

export interface GptData {
  readonly header: GptHeader;
  readonly partitions: readonly GptPartition[];
}

const GPT_SIGNATURE = 'EFI PART';
/** Largest entry size accepted; the spec allows 128 × 2^n and nobody uses more than 128. */
const MAX_ENTRY_SIZE = 4096;

export function gptData(data: Uint8Array): GptData {
  const r = new Reader(data);
  const sig = r.bytesN(8, 'Signature');
  if (String.fromCharCode(...sig) !== GPT_SIGNATURE)
    throw new DecodeFault('bad-signature', 'GPT header signature is not "EFI PART"', 0);
  const revision = r.u32('Revision');
  const headerSize = r.u32('HeaderSize');
  r.u32('HeaderCRC32');
  r.u32('Reserved');
  const myLba = r.u64('MyLBA');
  const alternateLba = r.u64('AlternateLBA');
  const firstUsableLba = r.u64('FirstUsableLBA');
  const lastUsableLba = r.u64('LastUsableLBA');
  const diskGuid = guidText(r.bytesN(16, 'DiskGUID'));
  const partitionEntryLba = r.u64('PartitionEntryLBA');
  const numberOfPartitionEntries = r.u32('NumberOfPartitionEntries');
  const sizeAt = r.offset;
  const sizeOfPartitionEntry = r.u32('SizeOfPartitionEntry');
  r.u32('PartitionEntryArrayCRC32');
  if (sizeOfPartitionEntry < 128 || sizeOfPartitionEntry > MAX_ENTRY_SIZE) {
    throw new DecodeFault(
      'bad-value',
      `SizeOfPartitionEntry ${sizeOfPartitionEntry} outside 128..${MAX_ENTRY_SIZE}`,
      sizeAt,
    );
  }
  const count = r.length64('NumberOfPartitions', sizeOfPartitionEntry);
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const e = r.sub(sizeOfPartitionEntry, 'partition entry');
    const typeGuid = guidText(e.bytesN(16, 'PartitionTypeGUID'));
    partitions.push({
      typeGuid,
      typeName: guidName(typeGuid),
      uniqueGuid: guidText(e.bytesN(16, 'UniquePartitionGUID')),
      startingLba: e.u64('StartingLBA'),
      endingLba: e.u64('EndingLBA'),
      attributes: e.u64('Attributes'),
      name: ucs2z(e.bytesN(72, 'PartitionName')),
    });
  }
  trailing(r, 'the partition entries');
  return {
    header: {
      revision,
      headerSize,
      myLba,
      alternateLba,
      firstUsableLba,
      lastUsableLba,
      diskGuid,
      partitionEntryLba,
      numberOfPartitionEntries,
      sizeOfPartitionEntry,
    },
    partitions,
  };
}
