/**
 * The typed results of the agent's operations, read from a verified response element. The fields
 * and their types are those of `sumac-agent.wsdl`.
 */
import { AgentResponseError } from "../protocol/errors.ts";
import type { OperationName } from "../protocol/wire.ts";
import { childElement, type XmlElement } from "../protocol/xml-tree.ts";

export interface HelloResult {
  readonly agentVersion: string;
  readonly os: string;
  readonly osRelease: string;
  readonly arch: string;
  readonly hostname: string;
  readonly nodeVersion: string;
  readonly pid: number;
  readonly sessionId: string;
  readonly port: number;
  readonly stagingDir: string;
  readonly runId: string;
  readonly targetId: string;
}
export interface DetectResult {
  readonly id: string;
  readonly status: "installed" | "absent" | "failed";
  readonly version: string;
  readonly exitCode: number;
}
export interface InventoryResult {
  readonly components: readonly DetectResult[];
}
export interface StageResult {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}
export interface InstallResult {
  readonly componentId: string;
  readonly exitCode: number;
  readonly durationMs: number;
  readonly rebootRequired: boolean;
  readonly outputTruncated: boolean;
}
export interface LogFileResult {
  readonly name: string;
  readonly size: number;
  readonly truncated: boolean;
  readonly content: Buffer;
}
export interface LogsResult {
  readonly files: readonly LogFileResult[];
}
export interface ShutdownResult {
  readonly logFile: string;
}

/** The result type of each operation. */
export interface ResultMap {
  Hello: HelloResult;
  Inventory: InventoryResult;
  Stage: StageResult;
  Install: InstallResult;
  Logs: LogsResult;
  Shutdown: ShutdownResult;
}
export type ResultOf<Op extends OperationName> = ResultMap[Op];

/** Reads the result of `operation` from its response element. */
export function readResult<Op extends OperationName>(operation: Op, element: XmlElement): ResultOf<Op> {
  const read = readers[operation] as (e: XmlElement) => ResultOf<Op>;
  return read(element);
}

const readers: { [Op in OperationName]: (e: XmlElement) => ResultMap[Op] } = {
  Hello: (e) => ({
    agentVersion: text(e, "agentVersion"),
    os: text(e, "os"),
    osRelease: text(e, "osRelease"),
    arch: text(e, "arch"),
    hostname: text(e, "hostname"),
    nodeVersion: text(e, "nodeVersion"),
    pid: int(e, "pid"),
    sessionId: text(e, "sessionId"),
    port: int(e, "port"),
    stagingDir: text(e, "stagingDir"),
    runId: text(e, "runId"),
    targetId: text(e, "targetId"),
  }),
  Inventory: (e) => ({
    components: all(e, "component").map((c) => ({
      id: text(c, "id"),
      status: text(c, "status") as DetectResult["status"],
      version: text(c, "version"),
      exitCode: int(c, "exitCode"),
    })),
  }),
  Stage: (e) => ({ name: text(e, "name"), size: int(e, "size"), sha256: text(e, "sha256") }),
  Install: (e) => ({
    componentId: text(e, "componentId"),
    exitCode: int(e, "exitCode"),
    durationMs: int(e, "durationMs"),
    rebootRequired: bool(e, "rebootRequired"),
    outputTruncated: bool(e, "outputTruncated"),
  }),
  Logs: (e) => ({
    files: all(e, "file").map((f) => ({
      name: text(f, "name"),
      size: int(f, "size"),
      truncated: bool(f, "truncated"),
      content: Buffer.from(text(f, "content", true), "base64"),
    })),
  }),
  Shutdown: (e) => ({ logFile: text(e, "logFile") }),
};

function text(e: XmlElement, name: string, emptyOk = false): string {
  const child = childElement(e, name);
  if (child === undefined) {
    if (emptyOk) return "";
    throw new AgentResponseError(`${e.local} has no ${name}`);
  }
  return child.text;
}

function int(e: XmlElement, name: string): number {
  const value = Number(text(e, name));
  if (!Number.isSafeInteger(value)) throw new AgentResponseError(`${e.local}.${name} is not an integer`);
  return value;
}

function bool(e: XmlElement, name: string): boolean {
  return text(e, name) === "true";
}

function all(e: XmlElement, name: string): XmlElement[] {
  return e.children.filter((c) => c.local === name);
}
