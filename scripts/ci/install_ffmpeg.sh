#!/usr/bin/env bash
# Installs FFmpeg's shared libraries (Debian's ffmpeg package) for the optional torchcodec decoding backend
# (dataset.backend='torchcodec'; tests/test_video.py runs it against PyAV), when libavcodec is not installed yet.
# torchcodec's wheel ships no FFmpeg of its own (PyAV's bundled copy is private to PyAV). Idempotent and quiet: a
# second run does nothing. Needs root or sudo.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.'; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install_ffmpeg.sh: FFmpeg's libraries are missing and this user is not root (no sudo): install ffmpeg" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.' || { echo "install_ffmpeg.sh: libavcodec still missing after apt-get" >&2; exit 1; }
echo "install_ffmpeg.sh: installed FFmpeg's shared libraries ($(ldconfig -p | grep -o 'libavcodec\.so\.[0-9]*' | head -1))"
