#!/bin/bash
# Per-container set-up, then smbd and nmbd in the foreground, supervised: when either exits, the
# other is stopped and the container exits with its status.
#
# Input (optional, copied in by the fixture before start, mode 0600, then deleted here):
#   /etc/sumac-standin/password   the password of $SUMAC_SMB_USER, one line, fed to smbpasswd on stdin
# Environment (every value checked here; anything unexpected stops the container with status 2):
#   SUMAC_NETBIOS_NAME, SUMAC_WORKGROUP   1 to 15 letters, digits or '-'
#   SUMAC_SMB_USER                        an account of the image
#   SUMAC_SMB_MIN_PROTOCOL, SUMAC_SMB_MAX_PROTOCOL
#                                         SMB2_02, SMB2_10, SMB3_00, SMB3_02 or SMB3_11, min <= max
#                                         (default SMB3_11 for both)
#   SUMAC_SMB_SIGNING                     mandatory (default) or auto
#   SUMAC_SMB_ENCRYPT                     off, if_required (default), desired or required
#   SUMAC_SMB_PORTS                       445+139 (default) or 139 (the NetBIOS session service only)
# They become /etc/samba/per-container.conf, which smb.conf includes.
set -euo pipefail
secrets=/etc/sumac-standin
name=${SUMAC_NETBIOS_NAME:-WINTARGET}
workgroup=${SUMAC_WORKGROUP:-WORKGROUP}
user=${SUMAC_SMB_USER:-sumac}
min_protocol=${SUMAC_SMB_MIN_PROTOCOL:-SMB3_11}
max_protocol=${SUMAC_SMB_MAX_PROTOCOL:-SMB3_11}
signing=${SUMAC_SMB_SIGNING:-mandatory}
encrypt=${SUMAC_SMB_ENCRYPT:-if_required}
ports=${SUMAC_SMB_PORTS:-445+139}

refuse() { echo "entrypoint: $*" >&2; exit 2; }

# NetBIOS names are at most 15 characters from a restricted set; refuse anything else early.
[[ $name =~ ^[A-Za-z0-9-]{1,15}$ ]] || refuse "bad NetBIOS name '$name'"
[[ $workgroup =~ ^[A-Za-z0-9-]{1,15}$ ]] || refuse "bad workgroup '$workgroup'"
getent passwd "$user" >/dev/null || refuse "no user '$user'"

# The SMB2 dialects in order; a dialect's index orders min against max.
dialects=(SMB2_02 SMB2_10 SMB3_00 SMB3_02 SMB3_11)
dialect_index() {
  local i
  for i in "${!dialects[@]}"; do [ "${dialects[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  return 1
}
min_i=$(dialect_index "$min_protocol") || refuse "bad SUMAC_SMB_MIN_PROTOCOL '$min_protocol' (${dialects[*]})"
max_i=$(dialect_index "$max_protocol") || refuse "bad SUMAC_SMB_MAX_PROTOCOL '$max_protocol' (${dialects[*]})"
((min_i <= max_i)) || refuse "SUMAC_SMB_MIN_PROTOCOL $min_protocol is above SUMAC_SMB_MAX_PROTOCOL $max_protocol"
case $signing in mandatory | auto) ;; *) refuse "bad SUMAC_SMB_SIGNING '$signing' (mandatory, auto)" ;; esac
case $encrypt in
  off | if_required | desired | required) ;;
  *) refuse "bad SUMAC_SMB_ENCRYPT '$encrypt' (off, if_required, desired, required)" ;;
esac
case $ports in
  445+139) smb_ports="445 139" ;;
  139) smb_ports="139" ;;
  *) refuse "bad SUMAC_SMB_PORTS '$ports' (445+139, 139)" ;;
esac

cat >/etc/samba/per-container.conf <<CONF
   netbios name = $name
   workgroup = $workgroup
   admin users = $user
   server min protocol = $min_protocol
   server max protocol = $max_protocol
   server signing = $signing
   server smb encrypt = $encrypt
   smb ports = $smb_ports
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
