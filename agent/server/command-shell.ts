/**
 * How the agent starts a component's detect or install command, and ends it, per platform: pure
 * functions of the command and the agent's environment, so that both platforms' argv are tested
 * anywhere.
 *
 * - Linux: `/bin/sh -c <command>` in its own process group, a fixed clean environment.
 * - Windows: `%ComSpec% /d /s /c "<command>"` with the arguments passed verbatim, as Node itself
 *   runs a `shell: true` command there (`/d`: no AutoRun from the registry; `/s /c "..."`: cmd
 *   strips the outer quotes and runs the rest as typed). Windows has no process groups: the tree
 *   is ended with `taskkill /F /T /PID`, which follows parent process ids.
 *
 * Programs are named by full path under `%SystemRoot%`, so that nothing earlier on a PATH is run.
 */
import { win32 } from "node:path";

/** The environment every command gets on Linux. */
export const CLEAN_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C",
  LC_ALL: "C",
  HOME: "/",
};

/** `%SystemRoot%` where Windows always has it. */
const DEFAULT_SYSTEM_ROOT = "C:\\Windows";

/**
 * Machine-wide variables a Windows command may need (installers look up Program Files and
 * ProgramData), copied from the agent's environment when set; user and session ones are not.
 */
const WINDOWS_MACHINE_VARIABLES = [
  "SystemDrive",
  "ProgramData",
  "ProgramFiles",
  "ProgramFiles(x86)",
  "ProgramW6432",
  "CommonProgramFiles",
  "CommonProgramFiles(x86)",
  "CommonProgramW6432",
  "ALLUSERSPROFILE",
  "PUBLIC",
  "OS",
  "NUMBER_OF_PROCESSORS",
  "PROCESSOR_ARCHITECTURE",
  "COMPUTERNAME",
] as const;

/** How to start one command: program, arguments, spawn options. */
export interface ShellInvocation {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Windows: the arguments go to cmd as written, not re-quoted by Node. */
  readonly windowsVerbatimArguments: boolean;
  /** Linux: its own process group, which the kill signals reach whole. */
  readonly detached: boolean;
}

/** `env.SystemRoot`, or `C:\Windows`. */
export function systemRoot(env: NodeJS.ProcessEnv): string {
  return env.SystemRoot ?? DEFAULT_SYSTEM_ROOT;
}

/** The shell that runs `command` on `platform`, `env` being the agent's own environment. */
export function shellInvocation(
  command: string,
  platform: NodeJS.Platform,
  env: NodeJS.ProcessEnv,
): ShellInvocation {
  if (platform !== "win32")
    return {
      file: "/bin/sh",
      args: ["-c", command],
      env: CLEAN_ENV,
      windowsVerbatimArguments: false,
      detached: true,
    };
  const comspec = env.ComSpec ?? win32.join(DEFAULT_SYSTEM_ROOT, "System32", "cmd.exe");
  return {
    file: comspec,
    args: ["/d", "/s", "/c", `"${command}"`],
    env: windowsCommandEnv(env, comspec),
    windowsVerbatimArguments: true,
    detached: false,
  };
}

/**
 * The environment of a command on Windows: the system's directories on PATH and as TEMP, cmd as
 * ComSpec, and {@link WINDOWS_MACHINE_VARIABLES} from the agent's environment.
 */
export function windowsCommandEnv(env: NodeJS.ProcessEnv, comspec: string): Record<string, string> {
  const root = systemRoot(env);
  const clean: Record<string, string> = {
    SystemRoot: root,
    windir: root,
    ComSpec: comspec,
    PATH: [
      win32.join(root, "System32"),
      root,
      win32.join(root, "System32", "Wbem"),
      win32.join(root, "System32", "WindowsPowerShell", "v1.0"),
    ].join(";"),
    PATHEXT: ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
    TEMP: win32.join(root, "Temp"),
    TMP: win32.join(root, "Temp"),
  };
  for (const name of WINDOWS_MACHINE_VARIABLES) {
    const value = env[name];
    if (value !== undefined) clean[name] = value;
  }
  return clean;
}

/** The argv (program first) that ends process `pid` and every process it started, on Windows. */
export function taskkillArgv(pid: number, env: NodeJS.ProcessEnv): string[] {
  return [win32.join(systemRoot(env), "System32", "taskkill.exe"), "/F", "/T", "/PID", String(pid)];
}
