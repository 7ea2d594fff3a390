#!/bin/sh
# Per-container set-up, then sshd in the foreground logging to stderr.
#
# Input (optional, copied in by the fixture before start, mode 0600, then deleted here):
#   /etc/sumac-target/USER.authorized_keys   installed as ~USER/.ssh/authorized_keys
#   /etc/sumac-target/passwords              "user:password" lines, fed to chpasswd on stdin
set -eu
secrets=/etc/sumac-target

# A fresh host key for every container, never one from the image.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C '' -f /etc/ssh/ssh_host_ed25519_key

for file in "$secrets"/*.authorized_keys; do
  [ -e "$file" ] || continue
  user=$(basename "$file" .authorized_keys)
  home=$(getent passwd "$user" | cut -d: -f6)
  [ -n "$home" ] || { echo "entrypoint: no user '$user'" >&2; exit 1; }
  group=$(id -gn "$user")
  install -d -m 0700 -o "$user" -g "$group" "$home/.ssh"
  install -m 0600 -o "$user" -g "$group" "$file" "$home/.ssh/authorized_keys"
  rm -f "$file"
done

if [ -e "$secrets/passwords" ]; then
  chpasswd <"$secrets/passwords"
  rm -f "$secrets/passwords"
fi

mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
