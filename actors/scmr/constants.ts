/**
 * The numbers of MS-SCMR that sumac's service control client uses: the svcctl interface, method
 * opnums (MS-SCMR 3.1.4), access rights (2.2.x, 3.1.4), service types, start types and states
 * (2.2.47) and controls (3.1.4.2).
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
  ROpenSCManagerW: 15,
  ROpenServiceW: 16,
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

/** What sumac asks of the services it creates and opens: run, watch, stop and remove them. */
export const SERVICE_ACCESS_FOR_DEPLOY =
  ServiceAccess.QUERY_STATUS | ServiceAccess.START | ServiceAccess.STOP | ServiceAccess.DELETE;

/** dwServiceType of a service in its own process (MS-SCMR 2.2.47). */
export const SERVICE_WIN32_OWN_PROCESS = 0x10;
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
