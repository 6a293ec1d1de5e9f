export { TpmResponseError, TpmTransportError } from './errors.ts';
export type { TransportErrorCode } from './errors.ts';
export { describeResponseCode } from './response-codes.ts';
export type { DescribedResponseCode } from './response-codes.ts';
export {
  checkResponseFrame,
  DeviceTransport,
  MAX_RESPONSE_SIZE,
  openTransport,
  SimulatorTransport,
} from './transport.ts';
export type { Transport, TransportOptions } from './transport.ts';
