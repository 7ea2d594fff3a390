/**
 * The JSON Schema of job files, generated from the zod schema so the two cannot disagree. Editors
 * use it (YAML language server: a `# yaml-language-server: $schema=...` line) for completion and
 * checks while typing; sumac itself checks with the zod schema, which also checks what JSON Schema
 * cannot say (files exist, ids unique).
 */
import { z } from "zod";
import { JobSchema } from "./schema.ts";

/** Where the generated schema is committed, relative to the repository root. */
export const JOB_SCHEMA_PATH = "schema/job.schema.json";

/** The JSON Schema (draft 7, which editors support widely) of what a user writes. */
export function jobJsonSchema(): Record<string, unknown> {
  // "input": fields with defaults are optional, which is what a user may leave out.
  return z.toJSONSchema(JobSchema, { target: "draft-7", io: "input", unrepresentable: "throw" });
}

/** The schema file's text: stable key order, two-space indent, final newline. */
export function jobJsonSchemaText(): string {
  return `${JSON.stringify(jobJsonSchema(), null, 2)}\n`;
}
