/**
 * The agent's WSDL text. Read next to this module; the bundler (agent/build.ts) is expected to
 * inline `sumac-agent.wsdl` so the bundle stays one file.
 */
import { readFileSync } from "node:fs";

/** The text of `sumac-agent.wsdl`. */
export function loadAgentWsdl(): string {
  return readFileSync(new URL("./sumac-agent.wsdl", import.meta.url), "utf8");
}
