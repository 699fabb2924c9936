#!/usr/bin/env bash
# Installs FFmpeg's shared libraries (Debian's ffmpeg package) for the optional torchcodec decoding backend
# (dataset.backend='torchcodec'; tests/test_video.py runs it against PyAV), when libavcodec is not installed yet.
# torchcodec's wheel ships no FFmpeg of its own (PyAV's bundled copy is private to PyAV). Idempotent and quiet: a
# second run does nothing. Needs root or sudo.
exec bash "$(dirname "$0")/apt_install.sh" install_ffmpeg.sh "ldconfig -p | grep -q 'libavcodec\.so\.'" ffmpeg
