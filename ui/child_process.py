"""Stopping a child process the app or its tools started (Xvfb, the platform simulator,
espeak-ng): politely first, then for sure, and always reaped."""

import subprocess


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not ended within timeout_s; wait for it either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
