/**
 * NTSTATUS values an SMB2 client meets in the Status field of a response header (MS-SMB2 2.2.1,
 * values from MS-ERREF 2.3.1), their names, and the typed error a failed request becomes.
 */
import { errorClass } from "../../../base/errors.ts";

/** NTSTATUS codes (MS-ERREF 2.3.1) that an SMB2 client may receive and branch on. */
export const NtStatus = {
  SUCCESS: 0x00000000,
  PENDING: 0x00000103,
  NOTIFY_ENUM_DIR: 0x0000010c,
  BUFFER_OVERFLOW: 0x80000005,
  NO_MORE_FILES: 0x80000006,
  STOPPED_ON_SYMLINK: 0x8000002d,
  INVALID_INFO_CLASS: 0xc0000003,
  INFO_LENGTH_MISMATCH: 0xc0000004,
  INVALID_HANDLE: 0xc0000008,
  INVALID_PARAMETER: 0xc000000d,
  NO_SUCH_DEVICE: 0xc000000e,
  NO_SUCH_FILE: 0xc000000f,
  INVALID_DEVICE_REQUEST: 0xc0000010,
  END_OF_FILE: 0xc0000011,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  ACCESS_DENIED: 0xc0000022,
  BUFFER_TOO_SMALL: 0xc0000023,
  OBJECT_NAME_INVALID: 0xc0000033,
  OBJECT_NAME_NOT_FOUND: 0xc0000034,
  OBJECT_NAME_COLLISION: 0xc0000035,
  OBJECT_PATH_INVALID: 0xc0000039,
  OBJECT_PATH_NOT_FOUND: 0xc000003a,
  OBJECT_PATH_SYNTAX_BAD: 0xc000003b,
  SHARING_VIOLATION: 0xc0000043,
  DELETE_PENDING: 0xc0000056,
  PRIVILEGE_NOT_HELD: 0xc0000061,
  WRONG_PASSWORD: 0xc000006a,
  LOGON_FAILURE: 0xc000006d,
  ACCOUNT_RESTRICTION: 0xc000006e,
  INVALID_LOGON_HOURS: 0xc000006f,
  INVALID_WORKSTATION: 0xc0000070,
  PASSWORD_EXPIRED: 0xc0000071,
  ACCOUNT_DISABLED: 0xc0000072,
  DISK_FULL: 0xc000007f,
  INSUFFICIENT_RESOURCES: 0xc000009a,
  FILE_IS_A_DIRECTORY: 0xc00000ba,
  NOT_SUPPORTED: 0xc00000bb,
  NETWORK_NAME_DELETED: 0xc00000c9,
  NETWORK_ACCESS_DENIED: 0xc00000ca,
  BAD_NETWORK_NAME: 0xc00000cc,
  REQUEST_NOT_ACCEPTED: 0xc00000d0,
  PIPE_NOT_AVAILABLE: 0xc00000ac,
  PIPE_BUSY: 0xc00000ae,
  PIPE_DISCONNECTED: 0xc00000b0,
  PIPE_CLOSING: 0xc00000b1,
  IO_TIMEOUT: 0xc00000b5,
  DIRECTORY_NOT_EMPTY: 0xc0000101,
  NOT_A_DIRECTORY: 0xc0000103,
  CANCELLED: 0xc0000120,
  FILE_DELETED: 0xc0000123,
  FILE_CLOSED: 0xc0000128,
  PIPE_BROKEN: 0xc000014b,
  NO_USER_SESSION_KEY: 0xc0000202,
  USER_SESSION_DELETED: 0xc0000203,
  CONNECTION_DISCONNECTED: 0xc000020c,
  CONNECTION_RESET: 0xc000020d,
  ACCOUNT_LOCKED_OUT: 0xc0000234,
  NOT_FOUND: 0xc0000225,
  PASSWORD_MUST_CHANGE: 0xc0000224,
  PATH_NOT_COVERED: 0xc0000257,
  NETWORK_SESSION_EXPIRED: 0xc000035c,
  SMB_BAD_CLUSTER_DIALECT: 0xc05d0001,
  SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP: 0xc05d0000,
} as const;
export type NtStatusName = keyof typeof NtStatus;

const names = new Map<number, string>(
  Object.entries(NtStatus).map(([name, code]) => [code, `STATUS_${name}`]),
);

/** "STATUS_LOGON_FAILURE" for a known code, "0xC000XXXX" otherwise. */
export function statusName(code: number): string {
  const unsigned = code >>> 0;
  return names.get(unsigned) ?? `0x${unsigned.toString(16).toUpperCase().padStart(8, "0")}`;
}

/**
 * True when `code` means the request failed: false for success, for the interim STATUS_PENDING,
 * and for the warnings that come with a usable body (MS-SMB2 3.3.4.4: MORE_PROCESSING_REQUIRED on
 * session setup, BUFFER_OVERFLOW on reads, queries and pipe transactions). Which body such a
 * response carries is error.ts's hasErrorBody.
 */
export function isErrorStatus(code: number): boolean {
  const unsigned = code >>> 0;
  return (
    unsigned !== NtStatus.SUCCESS &&
    unsigned !== NtStatus.PENDING &&
    unsigned !== NtStatus.MORE_PROCESSING_REQUIRED &&
    unsigned !== NtStatus.BUFFER_OVERFLOW
  );
}

/** A request the SMB server refused with an error status; guards branch on `status`, not the text. */
export class SmbStatusError extends errorClass("SMB_STATUS") {
  /** The NTSTATUS, unsigned. */
  readonly status: number;
  /** Its name, e.g. "STATUS_ACCESS_DENIED". */
  readonly statusName: string;

  /** `what` names the request (e.g. "CREATE d\\f"), and never holds a secret. */
  constructor(what: string, status: number, options?: ErrorOptions) {
    const name = statusName(status);
    super(`${what}: ${name}`, options);
    this.status = status >>> 0;
    this.statusName = name;
  }
}
