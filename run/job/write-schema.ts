/**
 * Prints the job file's JSON Schema, or with `--write` writes it to `schema/job.schema.json`,
 * formatted as the repository's Prettier settings say (so `npm run lint` passes on it). A unit test
 * fails when the committed file says something other than what this generates.
 *
 * Usage: node run/job/write-schema.ts [--write]
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { format, resolveConfig } from "prettier";
import { JOB_SCHEMA_PATH, jobJsonSchemaText } from "./json-schema.ts";

const target = fileURLToPath(new URL(`../../${JOB_SCHEMA_PATH}`, import.meta.url));
const options = (await resolveConfig(target)) ?? {};
const text = await format(jobJsonSchemaText(), { ...options, filepath: target });
if (process.argv.includes("--write")) {
  await writeFile(target, text);
  process.stdout.write(`wrote ${JOB_SCHEMA_PATH}\n`);
} else {
  process.stdout.write(text);
}
