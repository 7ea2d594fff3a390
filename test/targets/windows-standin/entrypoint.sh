#!/bin/bash
# Per-container set-up, then smbd and nmbd in the foreground, supervised: when either exits, the
# other is stopped and the container exits with its status.
#
# Input (optional, copied in by the fixture before start, mode 0600, then deleted here):
#   /etc/sumac-standin/password   the password of $SUMAC_SMB_USER, one line, fed to smbpasswd on stdin
# Environment: SUMAC_NETBIOS_NAME, SUMAC_WORKGROUP, SUMAC_SMB_USER.
set -euo pipefail
secrets=/etc/sumac-standin
name=${SUMAC_NETBIOS_NAME:-WINTARGET}
workgroup=${SUMAC_WORKGROUP:-WORKGROUP}
user=${SUMAC_SMB_USER:-sumac}

# NetBIOS names are at most 15 characters from a restricted set; refuse anything else early.
[[ $name =~ ^[A-Za-z0-9-]{1,15}$ ]] || { echo "entrypoint: bad NetBIOS name '$name'" >&2; exit 2; }
[[ $workgroup =~ ^[A-Za-z0-9-]{1,15}$ ]] || { echo "entrypoint: bad workgroup '$workgroup'" >&2; exit 2; }
getent passwd "$user" >/dev/null || { echo "entrypoint: no user '$user'" >&2; exit 2; }

cat >/etc/samba/identity.conf <<CONF
   netbios name = $name
   workgroup = $workgroup
   admin users = $user
CONF
testparm -s >/dev/null 2>&1 || { testparm -s >&2; exit 2; }

if [ -e "$secrets/password" ]; then
  # smbpasswd -s reads the new password twice from stdin.
  pw=$(head -n1 "$secrets/password")
  rm -f "$secrets/password"
  printf '%s\n%s\n' "$pw" "$pw" | smbpasswd -s -a "$user" >/dev/null
  unset pw
fi

# Each in its own process group (no --no-process-group): smbd signals its whole group when it goes
# down, which would otherwise reach this script and nmbd.
smbd --foreground --debug-stdout &
smbd_pid=$!
nmbd --foreground --debug-stdout &
nmbd_pid=$!

stop() { kill -TERM "$smbd_pid" "$nmbd_pid" 2>/dev/null || true; }
trap 'stop; wait; exit 0' TERM INT

status=0
wait -n "$smbd_pid" "$nmbd_pid" || status=$?
if kill -0 "$smbd_pid" 2>/dev/null; then which=nmbd; else which=smbd; fi
echo "entrypoint: $which exited (status $status); stopping the container" >&2
stop
# samba-dcerpcd (started on demand by smbd) outlives smbd: end it with the container.
pkill -TERM -x samba-dcerpcd 2>/dev/null || true
wait || true
exit $((status == 0 ? 1 : status))
