/**
 * The checks the service control client makes on what it sends before sending it: a service
 * name the SCM would take as a path or that a log could not show, strings over their caps, and
 * numbers out of their range.
 */
import { errorClass } from "../../base/errors.ts";
import { EnumServiceState, MAX_QUERY_CONFIG_BUFFER_SIZE } from "./constants.ts";

/** Arguments the client refuses before sending anything (a bad service name, an over-long path). */
export class ScmConfigError extends errorClass("CONFIG_INVALID") {}

/** The longest service or display name, in characters (MS-SCMR 3.1.4.12: 256). */
export const MAX_SERVICE_NAME_LENGTH = 256;
/** The longest binary path sumac sends, in characters (the codecs' string cap less the null). */
export const MAX_BINARY_PATH_LENGTH = 4095;

// C0 controls and DEL: the SCM keeps them, but no log or console shows them.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Throws {@link ScmConfigError} unless `name` is a service name the SCM takes as it is: not
 * empty, at most 256 characters, no `/` or `\` (MS-SCMR 3.1.4.12 refuses them), no control
 * characters. What prefix names carry (`sumac-`) is the caller's business.
 */
export function checkServiceName(name: string, field = "service name"): void {
  if (name.length === 0) throw new ScmConfigError(`the ${field} is empty`);
  if (name.length > MAX_SERVICE_NAME_LENGTH) {
    throw new ScmConfigError(`the ${field} has ${name.length} characters, over ${MAX_SERVICE_NAME_LENGTH}`);
  }
  if (name.includes("/") || name.includes("\\")) {
    throw new ScmConfigError(`the ${field} ${JSON.stringify(name)} holds a slash or backslash`);
  }
  if (CONTROL.test(name))
    throw new ScmConfigError(`the ${field} ${JSON.stringify(name)} holds a control character`);
}

/** Throws {@link ScmConfigError} unless `displayName` is not empty, at most 256 characters, and has no control characters. */
export function checkDisplayName(displayName: string): void {
  if (displayName.length === 0) throw new ScmConfigError("the display name is empty");
  if (displayName.length > MAX_SERVICE_NAME_LENGTH) {
    throw new ScmConfigError(
      `the display name has ${displayName.length} characters, over ${MAX_SERVICE_NAME_LENGTH}`,
    );
  }
  if (CONTROL.test(displayName)) throw new ScmConfigError("the display name holds a control character");
}

/** Throws {@link ScmConfigError} unless `binaryPath` is not empty, within its cap and has no control characters. */
export function checkBinaryPath(binaryPath: string): void {
  if (binaryPath.length === 0) throw new ScmConfigError("the binary path is empty");
  if (binaryPath.length > MAX_BINARY_PATH_LENGTH) {
    throw new ScmConfigError(
      `the binary path has ${binaryPath.length} characters, over ${MAX_BINARY_PATH_LENGTH}`,
    );
  }
  if (CONTROL.test(binaryPath)) throw new ScmConfigError("the binary path holds a control character");
}

/**
 * Throws {@link ScmConfigError} unless REnumServicesStatusW's dwServiceType is a non-zero DWORD
 * and dwServiceState one of `EnumServiceState` (MS-SCMR 3.1.4.14); which type bits a server
 * takes is its business.
 */
export function checkEnumFilter(serviceType: number, serviceState: number): void {
  if (!Number.isInteger(serviceType) || serviceType <= 0 || serviceType > 0xffffffff) {
    throw new ScmConfigError(`the service type ${serviceType} is not a non-zero DWORD`);
  }
  if (!(Object.values(EnumServiceState) as number[]).includes(serviceState)) {
    throw new ScmConfigError(`the service state ${serviceState} is not 1 (active), 2 (inactive) or 3 (all)`);
  }
}

/** Throws {@link ScmConfigError} unless `size` is a cbBufSize RQueryServiceConfigW takes (MS-SCMR 3.1.4.17: 0 to 8192). */
export function checkConfigBufferSize(size: number): void {
  if (!Number.isInteger(size) || size < 0 || size > MAX_QUERY_CONFIG_BUFFER_SIZE) {
    throw new ScmConfigError(`the config buffer size ${size} is not 0 to ${MAX_QUERY_CONFIG_BUFFER_SIZE}`);
  }
}
