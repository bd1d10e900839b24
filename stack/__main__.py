"""`python -m stack`: run the bundled text-to-video deployment until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from stack.launcher import DEFAULT_PORTS, SERVICES, Stack, StackError, StartInterrupted


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Start redis, llm (extractive planner), tts (eSpeak NG) and the text-to-video server on "
        "loopback, print one 'ready ...' line with their URLs, and stop them all on SIGINT/SIGTERM.",
    )
    for name in ("server", "tts", "llm", "redis"):
        parser.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], metavar="PORT",
                            help=f"{name} port (default {DEFAULT_PORTS[name]})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep redis data, uploads, videos and logs here "
                        "(default: a temporary folder, removed on exit)")
    parser.add_argument("--max-concurrent-jobs", type=int, default=2, metavar="N",
                        help="jobs the server processes at once; the rest wait queued (default 2)")
    args = parser.parse_args(argv)
    flag_of_port: dict[int, str] = {}
    for name in SERVICES:
        port, flag = getattr(args, f"{name}_port"), f"--{name}-port"
        if not 0 < port < 65536:
            parser.error(f"{flag} {port} is not a TCP port (1..65535)")
        if port in flag_of_port:
            parser.error(f"{flag_of_port[port]} and {flag} are both {port}; each service needs its own port")
        flag_of_port[port] = flag
    if args.max_concurrent_jobs < 1:
        parser.error("--max-concurrent-jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_signal: int | None = None

    def request_stop(signum, frame):
        nonlocal stop_signal
        stop_signal = signum

    def stopping() -> bool:
        return stop_signal is not None

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with tempfile.TemporaryDirectory(prefix="t2v-stack-") as scratch:
        ports = {name: getattr(args, f"{name}_port") for name in SERVICES}
        stack = Stack(ports, args.data_dir or Path(scratch), args.max_concurrent_jobs)
        try:
            stack.start(stop_requested=stopping)
        except StartInterrupted:
            # Not ready, so not a clean run: the shell's convention for death by signal.
            print(f"stack: {signal.Signals(stop_signal).name} while starting; stopped", file=sys.stderr)
            return 128 + stop_signal
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 2
        print(stack.urls.ready_line(), flush=True)
        try:
            while not stopping():
                died = stack.exited()
                if died:
                    name, code = next(iter(died.items()))
                    print(f"stack: {name} exited unexpectedly (code {code}); stopping the rest "
                          f"(log: {stack.log_path(name)})", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
