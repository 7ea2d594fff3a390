/**
 * The job's targets as the steps reach them (actors/target/transport.ts): host, port and login,
 * with the secrets read only when a login asks for them, and only those it needs.
 */
import type { SshAuth } from "../actors/ssh/auth.ts";
import type { BecomeConfig } from "../actors/ssh/become.ts";
import type { TargetAccess } from "../actors/target/transport.ts";
import { readSecret } from "./job/secret.ts";
import { parseAccount } from "../actors/smb/auth/account.ts";
import type { JobTarget, SshTarget } from "./job/types.ts";

async function credentialsOf(target: SshTarget, env: NodeJS.ProcessEnv): Promise<SshAuth> {
  const auth = target.auth;
  switch (auth.method) {
    case "agent":
      return { kind: "agent" };
    case "password":
      return { kind: "password", password: await readSecret(auth.password, env) };
    case "key":
      return {
        kind: "key",
        privateKey: await readSecret(auth.key, env),
        source: `the key of target ${target.id}`,
        ...(auth.passphrase === undefined ? {} : { passphrase: await readSecret(auth.passphrase, env) }),
      };
  }
}

/**
 * How a login other than root becomes root: sudo (by the job's path, else by the places the SSH
 * transport looks in), with its password only when the job gives one.
 */
async function becomeOf(target: SshTarget, env: NodeJS.ProcessEnv): Promise<BecomeConfig | undefined> {
  if (target.user === "root" || target.become === undefined) return undefined;
  const { password, sudoPath } = target.become;
  return {
    ...(password === undefined ? {} : { password: await readSecret(password, env) }),
    ...(sudoPath === undefined ? {} : { sudoPath }),
  };
}

/**
 * How the steps reach `target`. A secret that cannot be read fails the login that needs it with
 * SECRET_UNAVAILABLE, before anything is sent.
 */
export function targetAccess(target: JobTarget, env: NodeJS.ProcessEnv = process.env): TargetAccess {
  switch (target.transport) {
    case "local":
      return { transport: "local", id: target.id };
    case "smb": {
      // DOMAIN\user and user@domain carry their domain; `domain:` applies to a bare name.
      const account = parseAccount(target.user, target.domain);
      const auth = target.auth;
      return {
        transport: "smb",
        id: target.id,
        host: target.host,
        port: target.port,
        user: account.user,
        domain: account.domain,
        password: () => readSecret(auth.password, env),
      };
    }
    case "ssh":
      return {
        transport: "ssh",
        id: target.id,
        host: target.host,
        port: target.port,
        user: target.user,
        ...(target.hostKey === undefined ? {} : { hostKey: target.hostKey }),
        credentials: () => credentialsOf(target, env),
        become: () => becomeOf(target, env),
      };
  }
}
