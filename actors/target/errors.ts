/**
 * The failures of a target's steps that are not the transport's (actors/remote-errors.ts,
 * actors/ssh/errors.ts) nor the agent protocol's (agent/protocol/errors.ts), one class each with
 * its code from base/error-codes.ts. The machine's retry policy reads the code's retryable flag.
 */
import { errorClass } from "../../base/errors.ts";

/** A target that no transport of this build reaches (Windows waits for the SMB transport). */
export class TransportUnsupportedError extends errorClass("TRANSPORT_UNSUPPORTED") {}

/** The machine named a target the job does not have (a bug, or a snapshot of another job). */
export class UnknownTargetError extends errorClass("UNKNOWN_TARGET") {}

/** A secret of the target (key, passphrase, password) cannot be read; nothing was sent. */
export class TargetSecretError extends errorClass("SECRET_UNAVAILABLE") {}

/** The target's address, or this host's address towards it, cannot be told. */
export class TargetAddressError extends errorClass("UNREACHABLE") {}

/** A step that needs a session this process no longer has (it restarted, or a bug). */
export class SessionLostError extends errorClass("SESSION_LOST") {}

/** The target has no Node >= 18 and this workstation's Node cannot run there. */
export class NoRuntimeError extends errorClass("NO_RUNTIME") {}

/** The target has no Node >= 18 and no gzip to unpack the runtime pushed to it. */
export class NoGzipError extends errorClass("NO_GZIP") {}

/** A command of the push (probe, unpacking) failed on the target. */
export class PushCommandError extends errorClass("PUSH_COMMAND_FAILED") {}

/** The runtime unpacked on the target is not the binary sent (a damaged transfer or disk): push again. */
export class RuntimeHashError extends errorClass("HASH_MISMATCH") {}

/** The agent bundle could not be built on this workstation. */
export class AgentBuildError extends errorClass("AGENT_BUILD_FAILED") {}

/**
 * The bundle on the target is not the one sent (damaged on disk, or replaced): starting it again
 * would find the same file, so it is not retried.
 */
export class AgentBundleMismatchError extends errorClass("BUNDLE_MISMATCH") {}

/** The agent did not go through its start-up dialogue (no key, no listening line, its own failure). */
export class AgentStartError extends errorClass("AGENT_START_FAILED") {}

/**
 * The agent listens, but its first callback did not reach this workstation's callback listener in
 * time (a host firewall here, or the target calling back from another address): without callbacks
 * the run cannot see installs, so the target fails at once, naming the port to open.
 */
export class CallbackBlockedError extends errorClass("CALLBACK_BLOCKED") {}

/** A step that needs what an earlier step of this target made (an agent, a session), and it is not there. */
export class AgentStateError extends errorClass("AGENT_NOT_RUNNING") {}

/** A component's install command exited non-zero (HP SUM: the component failed). */
export class ComponentFailedError extends errorClass("COMPONENT_FAILED") {}

/** The agent still runs: its files are not removed from under it (the next attempt looks again). */
export class AgentStillRunningError extends errorClass("AGENT_STILL_RUNNING") {}
