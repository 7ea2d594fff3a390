/**
 * The Win32 error codes a service control client meets in the return value of an MS-SCMR call
 * (MS-SCMR 3.1.4, each method's return values; the codes are MS-ERREF 2.2), and the error that
 * carries one.
 */
import { errorClass } from "../../base/errors.ts";

/** Win32 error codes by name (MS-ERREF 2.2). */
export const Win32Error = {
  ERROR_SUCCESS: 0,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_PATH_NOT_FOUND: 3,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_HANDLE: 6,
  ERROR_NOT_ENOUGH_MEMORY: 8,
  ERROR_INVALID_DATA: 13,
  ERROR_NOT_SUPPORTED: 50,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_INSUFFICIENT_BUFFER: 122,
  ERROR_INVALID_NAME: 123,
  ERROR_INVALID_LEVEL: 124,
  ERROR_BAD_EXE_FORMAT: 193,
  ERROR_MORE_DATA: 234,
  ERROR_DEPENDENT_SERVICES_RUNNING: 1051,
  ERROR_INVALID_SERVICE_CONTROL: 1052,
  ERROR_SERVICE_REQUEST_TIMEOUT: 1053,
  ERROR_SERVICE_NO_THREAD: 1054,
  ERROR_SERVICE_DATABASE_LOCKED: 1055,
  ERROR_SERVICE_ALREADY_RUNNING: 1056,
  ERROR_INVALID_SERVICE_ACCOUNT: 1057,
  ERROR_SERVICE_DISABLED: 1058,
  ERROR_CIRCULAR_DEPENDENCY: 1059,
  ERROR_SERVICE_DOES_NOT_EXIST: 1060,
  ERROR_SERVICE_CANNOT_ACCEPT_CTRL: 1061,
  ERROR_SERVICE_NOT_ACTIVE: 1062,
  ERROR_DATABASE_DOES_NOT_EXIST: 1065,
  ERROR_SERVICE_SPECIFIC_ERROR: 1066,
  ERROR_PROCESS_ABORTED: 1067,
  ERROR_SERVICE_DEPENDENCY_FAIL: 1068,
  ERROR_SERVICE_LOGON_FAILED: 1069,
  ERROR_SERVICE_START_HANG: 1070,
  ERROR_INVALID_SERVICE_LOCK: 1071,
  ERROR_SERVICE_MARKED_FOR_DELETE: 1072,
  ERROR_SERVICE_EXISTS: 1073,
  ERROR_SERVICE_DEPENDENCY_DELETED: 1075,
  ERROR_DUPLICATE_SERVICE_NAME: 1078,
  ERROR_SHUTDOWN_IN_PROGRESS: 1115,
} as const;

/** A Win32 error name of {@link Win32Error}. */
export type Win32ErrorName = keyof typeof Win32Error;

const names: ReadonlyMap<number, Win32ErrorName> = new Map(
  (Object.entries(Win32Error) as [Win32ErrorName, number][]).map(([name, code]) => [code, name]),
);

/**
 * The name of a Win32 error code, or `WIN32_ERROR_0x...` (8 hex digits) for a code not in the
 * table, so that a message always names what the server said.
 */
export function win32ErrorName(code: number): string {
  return names.get(code) ?? `WIN32_ERROR_0x${(code >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * The service control manager answered a call with a non-zero Win32 error (MS-SCMR 3.1.4).
 * Callers branch on `win32Error` (e.g. `Win32Error.ERROR_SERVICE_EXISTS`), never on the message.
 */
export class ScmError extends errorClass("SCM_ERROR") {
  readonly win32Error: number;
  readonly win32ErrorName: string;

  /** `call` names the method (e.g. "RCreateServiceW") in the message. */
  constructor(call: string, win32Error: number, options?: ErrorOptions) {
    const name = win32ErrorName(win32Error);
    super(`${call} failed: ${name} (${win32Error >>> 0})`, options);
    this.win32Error = win32Error >>> 0;
    this.win32ErrorName = name;
  }
}
