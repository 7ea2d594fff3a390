/**
 * testcontainers, loaded with its reaper (Ryuk) disabled: its image comes from a registry that
 * these machines cannot reach. Without a reaper the tests stop what they start, and the sweep
 * (`npm run targets:sweep`) removes leftovers by label.
 */
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";

const tc = await import("testcontainers");

export const GenericContainer = tc.GenericContainer;
export const Wait = tc.Wait;
export type { StartedTestContainer, WaitStrategy } from "testcontainers";
