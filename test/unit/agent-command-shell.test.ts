/** How the agent starts and ends a component's command per platform (agent/server/command-shell.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CLEAN_ENV,
  shellInvocation,
  systemRoot,
  taskkillArgv,
  windowsCommandEnv,
} from "../../agent/server/command-shell.ts";
import { CLEAN_ENV as fromRunCommand } from "../../agent/server/run-command.ts";

const WINDOWS_ENV = {
  SystemRoot: "D:\\WINNT",
  ComSpec: "D:\\WINNT\\system32\\cmd.exe",
  ProgramFiles: "D:\\Program Files",
  ProgramData: "D:\\ProgramData",
  USERNAME: "SYSTEM",
  SSH_AUTH_SOCK: "x",
  PATH: "C:\\evil;D:\\WINNT\\system32",
};

describe("agent command shell", () => {
  it("agent command shell - Linux: /bin/sh -c in its own process group with the clean environment, as before", () => {
    for (const platform of ["linux", "darwin"] as const)
      assert.deepEqual(
        shellInvocation("apt-get install -y nginx && echo ok", platform, { PATH: "/x", SECRET: "y" }),
        {
          file: "/bin/sh",
          args: ["-c", "apt-get install -y nginx && echo ok"],
          env: CLEAN_ENV,
          windowsVerbatimArguments: false,
          detached: true,
        },
      );
    assert.equal(fromRunCommand, CLEAN_ENV);
    assert.deepEqual(CLEAN_ENV, {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      LANG: "C",
      LC_ALL: "C",
      HOME: "/",
    });
  });

  it("agent command shell - Windows: %ComSpec% /d /s /c with the command quoted once and passed verbatim", () => {
    const command = 'msiexec /i "pkg 1.msi" /qn && echo "done"';
    const shell = shellInvocation(command, "win32", WINDOWS_ENV);
    assert.equal(shell.file, "D:\\WINNT\\system32\\cmd.exe");
    assert.deepEqual(shell.args, ["/d", "/s", "/c", `"${command}"`]);
    assert.equal(shell.windowsVerbatimArguments, true);
    assert.equal(shell.detached, false);
    assert.equal(shellInvocation("ver", "win32", {}).file, "C:\\Windows\\System32\\cmd.exe");
  });

  it("agent command shell - Windows: the environment is the system's, not the agent's session", () => {
    assert.deepEqual(windowsCommandEnv(WINDOWS_ENV, "D:\\WINNT\\system32\\cmd.exe"), {
      SystemRoot: "D:\\WINNT",
      windir: "D:\\WINNT",
      ComSpec: "D:\\WINNT\\system32\\cmd.exe",
      PATH: "D:\\WINNT\\System32;D:\\WINNT;D:\\WINNT\\System32\\Wbem;D:\\WINNT\\System32\\WindowsPowerShell\\v1.0",
      PATHEXT: ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
      TEMP: "D:\\WINNT\\Temp",
      TMP: "D:\\WINNT\\Temp",
      ProgramFiles: "D:\\Program Files",
      ProgramData: "D:\\ProgramData",
    });
    assert.equal(shellInvocation("ver", "win32", {}).env.SystemRoot, "C:\\Windows");
  });

  it("agent command shell - Windows: the tree is ended with taskkill /F /T /PID by its path under SystemRoot", () => {
    assert.deepEqual(taskkillArgv(4242, WINDOWS_ENV), [
      "D:\\WINNT\\System32\\taskkill.exe",
      "/F",
      "/T",
      "/PID",
      "4242",
    ]);
    assert.deepEqual(taskkillArgv(7, {}), ["C:\\Windows\\System32\\taskkill.exe", "/F", "/T", "/PID", "7"]);
    assert.equal(systemRoot({}), "C:\\Windows");
  });
});
