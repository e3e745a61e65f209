#!/bin/bash
# Entrypoint given to the local stand-in of jasonish/suricata:7.0 by scripts/e2e-prereqs.sh.
# It does what the real image's documented entrypoint does (7.0/docker-entrypoint.sh):
# copy missing files from /etc/suricata.dist, run a non-option first argument as a command,
# and, only with the SYS_NICE and NET_ADMIN capabilities, apply PUID/PGID to the `suricata`
# user, chown the four volumes and start Suricata with --user suricata --group suricata.
set -e

for src in /etc/suricata.dist/*; do
  dst="/etc/suricata/$(basename "$src")"
  if ! test -e "$dst"; then
    echo "Creating $dst."
    cp -a "$src" "$dst"
  fi
done

if [ $# -gt 0 ] && [ "${1:0:1}" != "-" ]; then
  exec "$@"
fi

# Bit numbers from linux/capability.h: CAP_NET_ADMIN 12, CAP_SYS_NICE 23.
has_cap() {
  local eff
  eff=$(awk '/^CapEff:/ {print $2}' /proc/1/status)
  (( (16#$eff >> $1) & 1 ))
}

args=()
if has_cap 23 && has_cap 12; then
  if [ -n "${PGID:-}" ]; then groupmod -o -g "$PGID" suricata; fi
  if [ -n "${PUID:-}" ]; then usermod -o -u "$PUID" suricata; fi
  chown -R suricata:suricata /etc/suricata /var/lib/suricata /var/log/suricata /var/run/suricata
  args+=(--user suricata --group suricata)
else
  echo "Warning: running as root due to missing capabilities" >&2
fi

# shellcheck disable=SC2086 # SURICATA_OPTIONS is a list of options, split on purpose
exec /usr/bin/suricata "${args[@]}" ${SURICATA_OPTIONS:-} "$@"
