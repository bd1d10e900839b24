"""`python -m stack`: run the bundled text-to-video deployment until SIGINT or SIGTERM, or act on a running one."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from stack.launcher import (
    CONTROL_ACTIONS,
    CONTROL_ANSWER_S,
    DEFAULT_FREEZE_S,
    DEFAULT_PORTS,
    SERVICES,
    ControlChannel,
    Stack,
    StackError,
    StartInterrupted,
    control_path,
    send_control,
)

RUN = "run"
WATCH_INTERVAL_S = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    actions = "\n".join(f"  {name:<8} {words}" for name, words in CONTROL_ACTIONS.items())
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Start redis, llm (extractive planner), tts (eSpeak NG) and the text-to-video server on "
        "loopback, print one 'ready ...' line with their URLs, and stop them all on SIGINT/SIGTERM. A service "
        "that dies is reported and the others keep running.",
        epilog="Acting on a running stack (the one whose server port is --server-port):\n"
        "  python -m stack ACTION [SERVICE] [--seconds S]\n" + actions + "\n"
        "The running launcher takes these on a Unix socket only its user can open\n"
        f"($XDG_RUNTIME_DIR or {tempfile.gettempdir()}, t2v-stack-<uid>-<server port>.sock); each answer comes within "
        f"{CONTROL_ANSWER_S:g} s.\n"
        "Examples: python -m stack restart tts\n"
        "          python -m stack freeze llm --seconds 30\n"
        "          python -m stack slow llm --seconds 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", default=RUN, choices=[RUN, *CONTROL_ACTIONS], metavar="ACTION",
                        help="run (default): start the stack; else one of: " + ", ".join(CONTROL_ACTIONS))
    parser.add_argument("service", nargs="?", choices=SERVICES, metavar="SERVICE",
                        help=f"the service to act on: {', '.join(SERVICES)}")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help=f"freeze: how long at most (default {DEFAULT_FREEZE_S:g}); slow: the added delay")
    for name in ("server", "tts", "llm", "redis"):
        parser.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], metavar="PORT",
                            help=f"{name} port (default {DEFAULT_PORTS[name]})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep redis data, uploads, videos and logs here "
                        "(default: a temporary folder, removed on exit)")
    parser.add_argument("--max-concurrent-jobs", type=int, default=2, metavar="N",
                        help="jobs the server processes at once; the rest wait queued (default 2)")
    parser.add_argument("--dependency-timeout", type=float, default=None, metavar="SECONDS",
                        help="the server's bound on one tts or llm request (default: the server's own, 60 and 180)")
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
    if args.dependency_timeout is not None and not args.dependency_timeout > 0:
        parser.error("--dependency-timeout must be above 0")
    if args.action in (RUN, "status") and args.service:
        parser.error(f"{args.action} takes no SERVICE")
    if args.action not in (RUN, "status") and not args.service:
        parser.error(f"{args.action} needs a SERVICE: {', '.join(SERVICES)}")
    if args.seconds is not None and args.action not in ("freeze", "slow"):
        parser.error("--seconds goes with freeze or slow")
    if args.action == "slow" and args.seconds is None:
        parser.error("slow needs --seconds (the added delay; 0 ends it)")
    return args


def control(args: argparse.Namespace) -> int:
    """Send the action to the running launcher; print its answer."""
    request = {"action": args.action, "service": args.service, "seconds": args.seconds}
    try:
        answer = send_control(control_path(args.server_port), request)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    print(f"stack: {answer.get('detail')}", file=sys.stdout if answer["ok"] else sys.stderr)
    return 0 if answer["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.action != RUN:
        return control(args)
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
        stack = Stack(ports, args.data_dir or Path(scratch), args.max_concurrent_jobs, args.dependency_timeout)
        try:
            stack.start(stop_requested=stopping)
        except StartInterrupted:
            # Not ready, so not a clean run: the shell's convention for death by signal.
            print(f"stack: {signal.Signals(stop_signal).name} while starting; stopped", file=sys.stderr)
            return 128 + stop_signal
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 2
        try:
            with ControlChannel(stack, control_path(args.server_port)):
                print(stack.urls.ready_line(), flush=True)
                reported: set[tuple[str, float]] = set()  # exits already said
                while not stopping():
                    for died in filter(None, map(stack.exit_of, SERVICES)):
                        if (died.service, died.exited_at) not in reported:
                            reported.add((died.service, died.exited_at))
                            name = died.service
                            print(f"stack: {name} exited (code {died.exit_code}); the others keep running "
                                  f"(log: {stack.log_path(name)}; `python -m stack start {name}` starts it again)",
                                  file=sys.stderr, flush=True)
                    time.sleep(WATCH_INTERVAL_S)
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 2
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
