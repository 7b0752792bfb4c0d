#!/usr/bin/env bash
# Start pcscd with the vpcd driver unless it is already running (no systemd needed).
set -euo pipefail
if pgrep -x pcscd >/dev/null 2>&1; then
  exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
if [ ! -f /etc/reader.conf.d/vpcd ]; then
  echo "start-pcscd: vsmartcard-vpcd is not installed (/etc/reader.conf.d/vpcd missing)" >&2
  exit 1
fi
# pcscd daemonises itself; it listens for vpcd cards on 127.0.0.1:35963 and :35964
$sudo_cmd pcscd
for _ in $(seq 50); do
  # listening on port 35963 (0x8C7B), state 0A = LISTEN; never connect: that would look like a card
  if grep -qE '^ *[0-9]+: [0-9A-F]+:8C7B [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then exit 0; fi
  sleep 0.1
done
echo "start-pcscd: pcscd started but vpcd port 35963 is not listening" >&2
exit 1
