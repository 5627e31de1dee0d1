#!/usr/bin/env bash
# Sourced by the README commands and CI: installs the system pieces gpu-nids needs
# when they are missing, and sets what Mesa needs to run quietly. Idempotent.

_need=()
# Captured first: `ldconfig -p | grep -q` fails under pipefail when grep stops early.
_libs=$(ldconfig -p 2>/dev/null || true)
# A Vulkan loader plus at least one driver (ICD); Mesa's lavapipe is the software one.
[[ $_libs == *libvulkan.so.1* ]] || _need+=(libvulkan1)
_icd=no
for _f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do [ -e "$_f" ] && _icd=yes; done
[ "$_icd" = yes ] || _need+=(mesa-vulkan-drivers)
# libpcap for live capture (`detect -i`).
[[ $_libs == *"libpcap.so ("* ]] || _need+=(libpcap-dev)
if [ ${#_need[@]} -gt 0 ]; then
  echo "setup: installing ${_need[*]}" >&2
  _sudo=""
  [ "$(id -u)" -ne 0 ] && _sudo="sudo"
  $_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    $_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_need[@]}" >&2 ||
    { echo "setup: could not install ${_need[*]}; install them and retry" >&2; return 1 2>/dev/null || exit 1; }
fi
unset _need _sudo _icd _f _libs

# Mesa wants a private runtime dir; without one it prints warnings on every start.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/gpu-nids-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
