// Command building and response reading for the client: the shared byte reader/writer, with response
// problems reported as TpmTransportError(RESPONSE_MALFORMED) like every other transport failure.
import { ByteReader, ByteWriter } from '../bytes.ts';
import { TpmTransportError } from './errors.ts';

/** Builds command bytes; growable, big-endian as TPM 2.0 Part 1 §18 requires. */
export class CommandWriter extends ByteWriter {}

/** Reads response bytes; every read is bounds-checked and fails with a typed error naming the offset. */
export class ResponseReader extends ByteReader {
  override fail(message: string, offset: number = this.offset): never {
    throw new TpmTransportError('RESPONSE_MALFORMED', `${this.what}: ${message}`, offset);
  }
}
