/**
 * The numbers of MS-SCMR that sumac's service control client uses: the svcctl interface, method
 * opnums (MS-SCMR 3.1.4), access rights (2.2.x, 3.1.4), service types, start types and states
 * (2.2.47), controls (3.1.4.2), and the buffer bounds of the enumerating and querying calls
 * (3.1.4.14, 3.1.4.17).
 */

/**
 * The svcctl interface (MS-SCMR 1.9) on `\PIPE\svcctl`, version 2.0, in the shape of
 * actors/rpc's SyntaxId so that it is the abstract syntax of a bind as it is.
 */
export const SVCCTL_INTERFACE = {
  uuid: "367abb81-9844-35f1-ad32-98f038001003",
  version: 2,
  minor: 0,
} as const;

/** Opnums of the methods the client calls (MS-SCMR 3.1.4). */
export const ScmOpnum = {
  RCloseServiceHandle: 0,
  RControlService: 1,
  RDeleteService: 2,
  RQueryServiceStatus: 6,
  RCreateServiceW: 12,
  REnumServicesStatusW: 14,
  ROpenSCManagerW: 15,
  ROpenServiceW: 16,
  RQueryServiceConfigW: 17,
  RStartServiceW: 19,
} as const;

/** Access rights to the SCM (MS-SCMR 3.1.4: SC_MANAGER_*). */
export const ScManagerAccess = {
  CONNECT: 0x0001,
  CREATE_SERVICE: 0x0002,
  ENUMERATE_SERVICE: 0x0004,
  LOCK: 0x0008,
  QUERY_LOCK_STATUS: 0x0010,
  MODIFY_BOOT_CONFIG: 0x0020,
} as const;

/** Access rights to a service (MS-SCMR 3.1.4: SERVICE_* and the standard DELETE right). */
export const ServiceAccess = {
  QUERY_CONFIG: 0x0001,
  CHANGE_CONFIG: 0x0002,
  QUERY_STATUS: 0x0004,
  ENUMERATE_DEPENDENTS: 0x0008,
  START: 0x0010,
  STOP: 0x0020,
  PAUSE_CONTINUE: 0x0040,
  INTERROGATE: 0x0080,
  USER_DEFINED_CONTROL: 0x0100,
  DELETE: 0x00010000,
  ALL_ACCESS: 0x000f01ff,
} as const;

/**
 * What sumac asks of the services it creates and opens: run, watch, stop and remove them, and read
 * their configuration (the sweep of leftovers reads a service's binary path before removing it).
 */
export const SERVICE_ACCESS_FOR_DEPLOY =
  ServiceAccess.QUERY_CONFIG |
  ServiceAccess.QUERY_STATUS |
  ServiceAccess.START |
  ServiceAccess.STOP |
  ServiceAccess.DELETE;

/** What sumac asks of the SCM: connect, create services, and enumerate them (MS-SCMR 3.1.4.14). */
export const SC_MANAGER_ACCESS_FOR_DEPLOY =
  ScManagerAccess.CONNECT | ScManagerAccess.CREATE_SERVICE | ScManagerAccess.ENUMERATE_SERVICE;

/** dwServiceType of a service in its own process (MS-SCMR 2.2.47). */
export const SERVICE_WIN32_OWN_PROCESS = 0x10;

/**
 * Service type bits (MS-SCMR 2.2.47), and the combinations REnumServicesStatusW takes in
 * dwServiceType (MS-SCMR 3.1.4.14).
 */
export const ServiceType = {
  KERNEL_DRIVER: 0x01,
  FILE_SYSTEM_DRIVER: 0x02,
  WIN32_OWN_PROCESS: 0x10,
  WIN32_SHARE_PROCESS: 0x20,
  INTERACTIVE_PROCESS: 0x100,
  /** Kernel, file system and recognizer (0x08) drivers: the SDK's SERVICE_DRIVER. */
  DRIVER: 0x0b,
  /** Services in their own or a shared process: what sumac's sweep enumerates. */
  WIN32: 0x30,
} as const;

/** dwServiceState of REnumServicesStatusW (MS-SCMR 3.1.4.14): which services to list by state. */
export const EnumServiceState = {
  ACTIVE: 1,
  INACTIVE: 2,
  ALL: 3,
} as const;

/**
 * The most REnumServicesStatusW's cbBufSize may be: `range(0, 1024 * 256)` in the IDL (MS-SCMR
 * 3.1.4.14), so the server's RPC stub refuses a larger one and the rest comes by the resume index.
 */
export const MAX_ENUM_BUFFER_SIZE = 256 * 1024;
/**
 * The most REnumServicesStatusW's pcbBytesNeeded may ask for before the client gives up: past
 * MAX_ENUM_BUFFER_SIZE the rest comes by the resume index, 256 KiB a call, up to this.
 */
export const MAX_ENUM_BYTES_NEEDED = 4 * 1024 * 1024;
/** The most REnumServicesStatusW calls one enumeration makes (16 of 256 KiB are 4 MiB, and the first). */
export const MAX_ENUM_CALLS = 20;
/**
 * The most RQueryServiceConfigW's cbBufSize may be: `range(0, 1024 * 8)` in the IDL (MS-SCMR
 * 3.1.4.17); a configuration that needs more cannot be read through this call.
 */
export const MAX_QUERY_CONFIG_BUFFER_SIZE = 8 * 1024;
/** dwStartType: started only when asked; sumac never creates auto-start services. */
export const SERVICE_DEMAND_START = 3;
/** dwErrorControl: a failed start is logged and start-up goes on. */
export const SERVICE_ERROR_IGNORE = 0;
/** dwControl asking a service to stop (MS-SCMR 3.1.4.2). */
export const SERVICE_CONTROL_STOP = 1;
/** The SCM database a client opens (MS-SCMR 3.1.4.15). */
export const SERVICES_ACTIVE_DATABASE = "ServicesActive";

/** dwCurrentState of a service (MS-SCMR 2.2.47). */
export const ServiceState = {
  STOPPED: 1,
  START_PENDING: 2,
  STOP_PENDING: 3,
  RUNNING: 4,
  CONTINUE_PENDING: 5,
  PAUSE_PENDING: 6,
  PAUSED: 7,
} as const;
