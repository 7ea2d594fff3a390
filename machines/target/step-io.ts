/**
 * Input and output of every step actor the target machine invokes, by the name it is provided
 * under. The real implementations live in actors/; tests provide fakes.
 */
import type {
  CancelMode,
  ComponentAction,
  ComponentSpec,
  LogsSummary,
  PortLeases,
  TargetRef,
} from "./types.ts";

/**
 * What every input carries: the run, the target and the attempt, so that an actor can key its own
 * resources (sessions, files, leases) and stay idempotent when it runs again after a restore.
 */
export interface StepInputBase {
  runId: string;
  target: TargetRef;
  attempt: number;
}

export type ConnectInput = StepInputBase;
/** `sessionId` refers to the connection the actors keep; the machine holds only the name. */
export interface ConnectOutput {
  sessionId: string;
}

export interface PushAgentInput extends StepInputBase {
  sessionId: string;
}
export interface PushAgentOutput {
  agentDir: string;
}

export type AllocatePortsInput = StepInputBase;
export interface AllocatePortsOutput {
  leases: PortLeases;
}

export interface StartAgentInput extends StepInputBase {
  sessionId: string;
  agentDir: string;
  leases: PortLeases;
}
/** The agent may listen on the next free port when the leased one is busy on the target. */
export interface StartAgentOutput {
  agentPort: number;
}

export interface HelloInput extends StepInputBase {
  agentPort: number;
}
export interface HelloOutput {
  agentVersion: string;
}

export interface InventoryInput extends StepInputBase {
  agentPort: number;
  componentIds: string[];
}
/** Installed version of each asked component, null when absent. */
export interface InventoryOutput {
  installed: Record<string, string | null>;
}

export interface StageInput extends StepInputBase {
  agentPort: number;
  components: ComponentSpec[];
}
export interface StageOutput {
  files: number;
  bytes: number;
}

export interface InstallInput extends StepInputBase {
  agentPort: number;
  component: ComponentSpec;
  action: Exclude<ComponentAction, "skip">;
}
export interface InstallOutput {
  rebootNeeded: boolean;
}

export interface LogsInput extends StepInputBase {
  agentPort: number;
}
export type LogsOutput = LogsSummary;

/** Input of every cleanup step: what the run may hold, null where it never got that far. */
export interface CleanupInput extends StepInputBase {
  sessionId: string | null;
  agentDir: string | null;
  leases: PortLeases | null;
  agentPort: number | null;
  /**
   * How the target was cancelled, if it was: with `force` (a second Ctrl-C), stopAgent has the
   * agent stop the install in progress instead of waiting for it. Absent: not cancelled.
   */
  cancel?: CancelMode;
}

/** Input and output of each step actor, by the name it is provided under. */
export interface StepActorTypes {
  connect: [ConnectInput, ConnectOutput];
  pushAgent: [PushAgentInput, PushAgentOutput];
  allocatePorts: [AllocatePortsInput, AllocatePortsOutput];
  startAgent: [StartAgentInput, StartAgentOutput];
  hello: [HelloInput, HelloOutput];
  inventory: [InventoryInput, InventoryOutput];
  stage: [StageInput, StageOutput];
  install: [InstallInput, InstallOutput];
  logs: [LogsInput, LogsOutput];
  stopAgent: [CleanupInput, void];
  removeFiles: [CleanupInput, void];
  closeFirewall: [CleanupInput, void];
  releaseLeases: [CleanupInput, void];
  disconnect: [CleanupInput, void];
}
