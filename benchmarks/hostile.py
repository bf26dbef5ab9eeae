"""Attack a real `kmsnap pull` with hostile loopback servers: exit status, wall time, peak RSS,
stderr lines, whether the token shows, and whether the previous snapshot stayed the same.

    python benchmarks/hostile.py

Not a timing benchmark: it shows each bound at work on the whole command (the tests assert
the same things one by one). Peak RSS is the subprocess's, from /usr/bin/time, when present.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hostile import gzip_bomb, pause, send, serve  # noqa: E402

from kmsnap.emulator import Emulator  # noqa: E402

TOKEN = "t0k3n-abcdefghijklmnopqrstuvwxyz0123456789"
BOMB = gzip_bomb(4 * 1024**3)  # 4 GiB of zeros, about 4 MB on the wire


def _root(req: BaseHTTPRequestHandler) -> None:
    send(req, 200, b"{}")


def _bomb(req: BaseHTTPRequestHandler) -> None:
    send(req, 200, BOMB, headers={"Content-Encoding": "gzip"})


def _plain(req: BaseHTTPRequestHandler) -> None:
    req.send_response(200)
    req.end_headers()
    for _ in range(600):  # 600 MiB, no Content-Length
        req.wfile.write(b" " * (1 << 20))


def _drip(req: BaseHTTPRequestHandler) -> None:
    req.send_response(200)
    req.end_headers()
    for _ in range(1000):
        req.wfile.write(b" ")
        req.wfile.flush()
        if not pause(req, 1.0):
            return


def _retry_after(req: BaseHTTPRequestHandler) -> None:
    send(req, 429, b"", headers={"Retry-After": "1000000000"})


def _reason(req: BaseHTTPRequestHandler) -> None:
    send(req, 500, b"", reason=f"bad token {TOKEN}")


ATTACKS: list[tuple[str, Callable[[BaseHTTPRequestHandler], None], list[str]]] = [
    ("root answers {}", _root, []),
    ("gzip bomb, 4 GiB decoded", _bomb, []),
    ("600 MiB plain body", _plain, []),
    ("1 byte a second, --timeout 3 --deadline 20", _drip, ["--timeout", "3", "--deadline", "20"]),
    ("Retry-After: 1000000000", _retry_after, []),
    ("token in the reason phrase", _reason, []),
]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _pull(api: str, out: Path, env: dict[str, str], extra: list[str]) -> tuple[int, str, float]:
    timer = ["/usr/bin/time", "-f", "RSS %M"] if os.path.exists("/usr/bin/time") else []
    proc = subprocess.run(
        [*timer, sys.executable, "-m", "kmsnap", "pull", "--api", api, "--out", str(out), "-q",
         *extra],
        env=env, capture_output=True, text=True, timeout=600,
    )
    rss = [line for line in proc.stderr.splitlines() if line.startswith("RSS ")]
    peak = int(rss[0].split()[1]) / 1024 if rss else float("nan")
    return proc.returncode, proc.stderr, peak


def main() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_"))}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "snapshots"
        with Emulator() as emu:
            code, err, _ = _pull(emu.base_url, out, {**env, "KISSMETRICS_TOKEN": "demo-token"}, [])
            assert code == 0, err
        before = _digest(out)
        env["KISSMETRICS_TOKEN"] = TOKEN
        print("| attack | exit | wall s | peak RSS MiB | stderr lines | token shown | "
              "snapshot unchanged |")
        print("|---|---|---|---|---|---|---|")
        messages = []
        for name, handler, extra in ATTACKS:
            with serve(handler) as base:
                started = time.perf_counter()
                code, err, peak = _pull(base + "/core", out, env, extra)
                took = time.perf_counter() - started
            lines = [line for line in err.splitlines()
                     if not line.startswith(("RSS ", "Command exited"))]
            print(f"| {name} | {code} | {took:.1f} | {peak:.0f} | {len(lines)} | "
                  f"{TOKEN in err} | {_digest(out) == before} |")
            messages.append(f"- {name}: {lines[-1] if lines else '(nothing)'}")
        print()
        print("\n".join(messages))
        print(f"\n(this script's own peak RSS: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
