/**
 * Every error code sumac uses, named once, with whether a failure of that kind is worth another
 * attempt. Machine guards and retry policies branch on these codes (never on message text); the
 * report and the events carry them; the agent puts its own in SOAP faults. A code means one thing
 * and is retried one way wherever it is raised: a failure that is retried differently gets a code
 * of its own.
 *
 * Codes are SCREAMING_SNAKE_CASE. The lease service's reply statuses on the bus (`exhausted`,
 * `not-active`, ...) are values of the v1 lease schema, not codes: the lease client turns them into
 * the LEASE_ codes below (actors/lease/errors.ts).
 */

/** What the table says of one code. */
export interface ErrorCodeInfo {
  /** Another attempt may succeed without anything being changed first. */
  readonly retryable: boolean;
  /** What happened, in a few words. */
  readonly means: string;
}

/** The table. Grouped by who raises them; a code is named in one group only. */
export const ERROR_CODES = {
  // Reaching a target and working on it (SSH, local processes).
  UNREACHABLE: {
    retryable: true,
    means: "no server answered: refused, no route, name not resolved, or silence",
  },
  HOST_KEY_MISMATCH: { retryable: false, means: "the host presented another key than the one expected" },
  HOST_KEY_UNKNOWN: { retryable: false, means: "the host's key is not known and the policy is strict" },
  HOST_KEY_REVOKED: { retryable: false, means: "the host's key is marked @revoked in known_hosts" },
  HANDSHAKE_FAILED: { retryable: false, means: "key exchange failed for a reason other than the host key" },
  AUTH_FAILED: { retryable: false, means: "the server refused every authentication method given" },
  BAD_PRIVATE_KEY: { retryable: false, means: "a private key that cannot be used" },
  KNOWN_HOSTS_INVALID: { retryable: false, means: "known_hosts cannot be read or written" },
  BECOME_FAILED: { retryable: false, means: "sudo refused to make the login root" },
  TIMEOUT: { retryable: true, means: "an operation did not finish within its deadline and was stopped" },
  CONNECTION_LOST: { retryable: true, means: "the connection dropped while an operation was in flight" },
  COMMAND_FAILED: { retryable: false, means: "a command could not be run" },
  OUTPUT_TOO_LARGE: { retryable: false, means: "a command printed more than its cap and was stopped" },
  UPLOAD_FAILED: { retryable: true, means: "writing a file on the target failed" },
  HASH_MISMATCH: { retryable: true, means: "what arrived does not have the SHA-256 of what was sent" },
  PATH_REFUSED: { retryable: false, means: "a path outside the run root, or a run root not safe to use" },
  CONFIG_INVALID: { retryable: false, means: "the connection's options are wrong" },

  // Windows transport (actors/wire, actors/smb, actors/netbios).
  MALFORMED_PACKET: {
    retryable: false,
    means: "an SMB, NTLM, SPNEGO, NetBIOS or DCE/RPC packet that does not decode, or is over its cap",
  },
  SMB_STATUS: { retryable: false, means: "the SMB server answered a request with an error status" },
  SMB_NEGOTIATION_FAILED: {
    retryable: false,
    means: "client and server share no dialect, signing or cipher that the job allows",
  },
  SMB_INTEGRITY_FAILED: {
    retryable: false,
    means: "an SMB answer unsigned, badly signed or failing decryption while protection is on",
  },
  SMB_NO_CREDITS: { retryable: true, means: "the SMB server granted no credits to send a request with" },
  NETBIOS_NAME_NOT_FOUND: { retryable: true, means: "no NetBIOS name server or host answered for the name" },
  RPC_FAULT: { retryable: false, means: "the RPC server answered a call with a fault" },
  RPC_BIND_REFUSED: {
    retryable: false,
    means: "the RPC server refused to bind the interface (bind_nak, or a rejected presentation context)",
  },
  SCM_ERROR: {
    retryable: false,
    means: "the service control manager refused a call (a Win32 error)",
  },

  // The steps of a target (actors/target).
  CLEAN_FAILED: { retryable: false, means: "the clean of a target (sumac clean) did not finish" },
  TRANSPORT_UNSUPPORTED: { retryable: false, means: "no transport of this build reaches such a target" },
  UNKNOWN_TARGET: { retryable: false, means: "a step named a target the job does not have" },
  SECRET_UNAVAILABLE: { retryable: false, means: "a secret of the job cannot be read" },
  NO_RUNTIME: {
    retryable: false,
    means: "the target has no Node the agent can run on, and none can be pushed",
  },
  NO_GZIP: { retryable: false, means: "the target has no gzip to unpack the pushed runtime" },
  PUSH_COMMAND_FAILED: { retryable: false, means: "a command of the agent's push failed on the target" },
  AGENT_BUILD_FAILED: { retryable: false, means: "the agent bundle could not be built on the workstation" },
  BUNDLE_MISMATCH: { retryable: false, means: "the agent bundle on the target is not the one sent" },
  AGENT_START_FAILED: { retryable: true, means: "the agent did not go through its start-up dialogue" },
  CALLBACK_BLOCKED: {
    retryable: false,
    means: "the agent's first callback did not reach the workstation: its callback port is blocked",
  },
  AGENT_NOT_RUNNING: {
    retryable: false,
    means: "a step needs an agent session that this target does not have",
  },
  COMPONENT_FAILED: { retryable: false, means: "a component's install command exited non-zero" },
  SESSION_LOST: { retryable: false, means: "a step needs a connection that this process does not have" },
  AGENT_STILL_RUNNING: {
    retryable: true,
    means: "the agent has not ended: its files are not removed from under it",
  },

  // The target machine (machines/target).
  STEP_TIMEOUT: { retryable: true, means: "a step did not finish within its deadline" },
  INSTALL_TIMEOUT: {
    retryable: false,
    means: "an install did not answer within its deadline and may still run",
  },
  UNEXPECTED_ERROR: { retryable: false, means: "a step threw something without a code: a bug in sumac" },
  STEP_NOT_PROVIDED: { retryable: false, means: "the machine was given no actor for a step" },
  MISSING_STEP_INPUT: { retryable: false, means: "a step's input needs what no earlier step produced" },
  INVALID_VERSION: { retryable: false, means: "a component version that cannot be compared" },
  INVALID_POLICY: { retryable: false, means: "deadlines or retries that cannot be used" },
  MACHINE_FAILED: { retryable: false, means: "a target's machine itself failed: a bug in sumac" },

  // Port leases (actors/lease).
  LEASE_EXHAUSTED: { retryable: true, means: "every port of the range is leased or busy" },
  LEASE_UNKNOWN_RANGE: { retryable: false, means: "the lease service has no such range" },
  LEASE_UNKNOWN: { retryable: false, means: "the lease is not held any more" },
  LEASE_NOT_HOLDER: {
    retryable: false,
    means: "the request did not show the lease's secret: only its holder may renew or release it",
  },
  LEASE_INVALID_REQUEST: { retryable: false, means: "the lease service refused the request as malformed" },
  LEASE_UNAVAILABLE: { retryable: true, means: "no active lease service answered in time" },
  LEASE_SERVICE_FAILED: { retryable: true, means: "the lease service failed internally" },
  LEASE_BIND_FAILED: {
    retryable: false,
    means: "a granted port could not be bound, for a reason other than its use",
  },
  LEASE_CONFLICT_LIMIT: { retryable: true, means: "too many granted ports in a row were found taken" },

  // The bus and its state directory (bus/).
  NO_RESPONDERS: { retryable: true, means: "nobody listens on the subject of a request" },
  REVISION_MISMATCH: { retryable: false, means: "a key changed since it was read (compare-and-set lost)" },
  BUS_CLOSED: { retryable: false, means: "the bus was closed" },
  BUS_UNAVAILABLE: { retryable: true, means: "the NATS server, or the way to it, is away for now" },
  BUS_AUTH_FAILED: { retryable: false, means: "the NATS server refused the credentials given to it" },
  BUS_TLS_FAILED: {
    retryable: false,
    means: "TLS with the NATS server failed: certificate not trusted, wrong name, or TLS required",
  },
  BUS_CREDENTIALS_INVALID: {
    retryable: false,
    means: "a NATS credential or TLS file that cannot be used: missing, readable by others, malformed",
  },
  BUS_PERMISSION_DENIED: {
    retryable: false,
    means: "the NATS server refused a publish or subscribe on a subject the account may not use",
  },
  BAD_SUBJECT: { retryable: false, means: "a subject or key that the bus does not accept" },
  MESSAGE_TOO_LARGE: { retryable: false, means: "a message over the bus's size limit" },
  BAD_MESSAGE: { retryable: false, means: "a message that does not match its schema" },
  STATE_DIR_LOCKED: { retryable: false, means: "another sumac process holds the state directory" },
  BAD_STATE_FILE: { retryable: false, means: "a file of the state directory cannot be used" },

  // A host-wide lock on a file (base/host-lock.ts), where its user makes no errors of its own.
  HOST_LOCK_TOOL_MISSING: { retryable: false, means: "the flock program (util-linux) is not installed" },
  HOST_LOCK_NOT_PERMITTED: { retryable: false, means: "this process may not open the lock file" },
  HOST_LOCK_FAILED: { retryable: false, means: "the lock file could not be opened or locked" },

  // Host firewall registration (actors/firewall).
  FIREWALL_NOT_PERMITTED: { retryable: false, means: "this process may not change the host firewall" },
  FIREWALL_TOOL_MISSING: { retryable: false, means: "the firewall's command (nft, netsh) is not installed" },
  FIREWALL_TOOL_FAILED: { retryable: false, means: "the firewall's command failed" },
  FIREWALL_BAD_RULE: { retryable: false, means: "a rule with a field that cannot be used" },

  // A run and its command line (run/, cli/).
  BAD_JOB: { retryable: false, means: "a job file that cannot be used" },
  BAD_RETRY: { retryable: false, means: "a run that cannot be retried" },
  RUN_SETUP_FAILED: {
    retryable: false,
    means: "the bus, the lease service or the steps could not be set up",
  },
  BAD_USAGE: { retryable: false, means: "a command line that cannot be used" },

  // The agent protocol (agent/): raised by the agent and sent in its faults, or by either end.
  BODY_TOO_LARGE: { retryable: false, means: "a request body over the cap" },
  XML_FORBIDDEN: { retryable: false, means: "a body with a DOCTYPE or ENTITY declaration" },
  MALFORMED_XML: { retryable: false, means: "a body that is not a well-formed SOAP 1.1 envelope" },
  UNKNOWN_OPERATION: { retryable: false, means: "an operation the WSDL does not have" },
  INVALID_REQUEST: { retryable: false, means: "a request field missing, of the wrong type, or out of range" },
  PATH_ESCAPES_STAGING: {
    retryable: false,
    means: "a file name that resolves outside the staging directory",
  },
  STAGED_FILE_MISSING: { retryable: true, means: "a file to verify is not in the staging directory" },
  STAGED_FILE_MISMATCH: { retryable: true, means: "a staged file's size or SHA-256 is not the one sent" },
  DEADLINE_EXCEEDED: { retryable: true, means: "an agent operation ran past its deadline" },
  INSTALL_IN_PROGRESS: { retryable: true, means: "another install is running on the agent" },
  INSTALL_STOPPED: {
    retryable: false,
    means: "the install's process group was stopped before its end: a forced cancel or stop",
  },
  SHUTTING_DOWN: { retryable: false, means: "the agent is shutting down and takes no more work" },
  INTERNAL: { retryable: false, means: "an unexpected failure inside the agent" },
  NOT_FOUND: { retryable: false, means: "a request to a path that has no route" },
  MALFORMED_HEADER: { retryable: false, means: "a message security header that cannot be read" },
  UNKNOWN_SESSION: { retryable: false, means: "a message for another session than its connection's" },
  BAD_MAC: { retryable: false, means: "a message altered, forged, reflected or moved" },
  STALE_TIMESTAMP: {
    retryable: false,
    means: "a message older than the allowed skew from its sender's clock (as measured at Hello)",
  },
  FUTURE_TIMESTAMP: {
    retryable: false,
    means: "a message further ahead than the allowed skew from its sender's clock (as measured at Hello)",
  },
  REPLAYED: { retryable: false, means: "a message whose nonce was already accepted" },
  OUT_OF_ORDER: { retryable: false, means: "a message out of sequence: a gap, repeat or reorder" },
  AGENT_IDENTITY: { retryable: false, means: "the peer's certificate is not the pinned one, or not TLS 1.3" },
  AGENT_CONNECTION: {
    retryable: true,
    means: "the connection to the peer failed, closed, or a call timed out",
  },
  AGENT_RESPONSE: { retryable: false, means: "an answer that is not what the protocol says" },
  UNKNOWN_AGENT: { retryable: false, means: "a callback from an agent this listener does not know" },
  UNKNOWN_WORKSTATION: {
    retryable: false,
    means: "a TLS client of the run's CA that is not the agent's workstation (its pinned certificate)",
  },
  INVALID_PUBLIC_KEY: { retryable: false, means: "a public key that is not an ECDSA P-256 SPKI PEM" },
  INVALID_SUBJECT_NAME: { retryable: false, means: "a name that cannot go into a certificate" },
  PORTS_EXHAUSTED: { retryable: true, means: "every candidate port was taken" },
  PORT_BIND_TIMEOUT: { retryable: true, means: "a bind did not finish in time" },
  PORT_BIND_FAILED: { retryable: false, means: "a bind failed for a reason other than the port's use" },
  AGENT_CONFIG: { retryable: false, means: "an agent configuration that cannot be used" },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code of the table. */
export type ErrorCode = keyof typeof ERROR_CODES;
