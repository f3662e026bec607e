#!/usr/bin/env bash
# Installs the Debian packages the assistant needs when they are missing:
#   ffmpeg (decodes voice notes), espeak-ng (speaks test audio), tmux (terminal tests);
#   WITH_BROWSER=1: chromium (make e2e); WITH_CLUSTER=1: haproxy (make cluster).
# Runs apt-get only when something is missing; needs root (or sudo) for that.
set -euo pipefail
needed=()
command -v ffmpeg    >/dev/null 2>&1 || needed+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || needed+=(espeak-ng)
command -v tmux      >/dev/null 2>&1 || needed+=(tmux)
if [ "${WITH_BROWSER:-0}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || needed+=(chromium chromium-driver)
fi
if [ "${WITH_CLUSTER:-0}" = "1" ]; then
  command -v haproxy >/dev/null 2>&1 || needed+=(haproxy)
fi
if [ ${#needed[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: missing system packages: ${needed[*]} (install them with apt-get as root)" >&2; exit 1
  fi
fi
echo "Installing system packages: ${needed[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
