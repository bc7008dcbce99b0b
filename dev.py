#!/usr/bin/env python3
"""Wizamart on a developer's machine, with nothing but Python 3.11+ installed.

    python3 dev.py run [--port 8000]   # demo data, Celery worker + beat, web server
    python3 dev.py test [pytest args]  # the test suite; exit code is pytest's
    python3 dev.py stop                # stop the embedded PostgreSQL and Redis

Both create `.venv` when it is missing and (re)install the project into it when
`pyproject.toml` changed since the last install. With `DATABASE_URL` / `REDIS_URL` unset,
the settings start an embedded PostgreSQL and Redis under `var/` (or `WIZAMART_VAR_DIR`);
they keep running after this script exits so the next start is fast (`stop` stops them).

Standard library only: this file runs before any dependency is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 is
    sys.exit(f"Wizamart needs Python 3.11 or newer; this is {sys.version.split()[0]}.")

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".wizamart-pyproject.sha256"
QUEUES = "default,imports,emails,reports"
LETZSHOP_DEV_PORT = 8765  # preferred port of the Letzshop development server
# seed_demo prints one line per demo login, "<who> login (...): <username> / password <pw>";
# the banner repeats them.
LOGIN_LINE = re.compile(r"^(?P<who>.*?) login\b.*?: (?P<username>\S+) / password (?P<password>\S+)")


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Create `.venv` if needed and install the project when pyproject.toml changed."""
    python = venv_python()
    if not python.exists():
        say(f"creating virtualenv in {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = STAMP.read_text().strip() if STAMP.exists() else ""
    if installed != digest:
        say('installing the project: pip install -e ".[dev]"')
        started = time.monotonic()
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if os.environ.get("CI"):
            pip += ["--progress-bar=off", "--quiet"]
        subprocess.run([*pip, "-e", ".[dev]"], cwd=ROOT, check=True)
        STAMP.write_text(digest + "\n")
        say(f"installed in {time.monotonic() - started:.0f}s")
    return python


def manage(python: Path, *args: str, env: dict[str, str], capture: bool = False) -> str:
    """Run `manage.py` to completion; stop this script if it fails."""
    command = [str(python), "manage.py", *args]
    if not capture:
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        return ""
    result = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    print(result.stdout, end="", flush=True)
    if result.returncode:
        raise subprocess.CalledProcessError(result.returncode, command)
    return result.stdout


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: connections of a server just stopped (TIME_WAIT) don't count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(children: list[subprocess.Popen]) -> None:
    """SIGTERM every child's process group (Celery then finishes its current tasks), then
    SIGKILL whatever is left of them after 15 seconds: a child's own children included
    (Celery's embedded beat outlived its worker)."""
    for child in children:
        if os.name == "nt":
            child.terminate()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"pid {child.pid} did not stop in time; killing it")
            child.kill()
            child.wait()
    if os.name == "nt":
        return
    for child in children:  # each child leads its own group (start_new_session)
        while time.monotonic() < deadline and group_alive(child.pid):
            time.sleep(0.1)
        if group_alive(child.pid):
            say(f"processes of pid {child.pid} did not stop in time; killing them")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def banner(port: int, seed_output: str, letzshop_endpoint: str) -> str:
    url = f"http://127.0.0.1:{port}/"
    matches = [LOGIN_LINE.match(line.strip()) for line in seed_output.splitlines()]
    logins = [m.group(0) for m in matches if m]
    summary = [f"Wizamart is running at {url}"]
    for m in filter(None, matches):
        credentials = f"{m['username']} / {m['password']}"
        if m["who"] == "admin":
            summary.append(f"admin: /admin/ ({credentials})")
        else:
            summary.append(f"{m['who']}: {credentials}")
    lines = [
        "",
        "=" * 78,
        " — ".join(summary),
        f"  storefront: {url}",
        f"  admin:      {url}admin/",
        f"  API docs:   {url}api/v1/docs/",
        f"  health:     {url}health",
        "  logins (from seed_demo):" if logins else "  logins: see the seed_demo output above",
        *(f"    {line}" for line in logins),
        f"  Letzshop:   {letzshop_endpoint}",
        "Press Ctrl-C to stop the web server, the Celery worker and the Letzshop server.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


def command_run(port: int, letzshop_port: int) -> int:
    if not port_is_free(port):
        say(f"port {port} is already in use: stop what uses it or pass --port")
        return 1
    python = ensure_venv()
    env = dict(os.environ, DJANGO_DEBUG="1", PYTHONUNBUFFERED="1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "wizamart.settings")
    # Without LETZSHOP_ENDPOINT the demo syncs from our own Letzshop development server;
    # never from one another checkout left running on the preferred port.
    start_letzshop = not env.get("LETZSHOP_ENDPOINT")
    if start_letzshop:
        if not port_is_free(letzshop_port):
            taken, letzshop_port = letzshop_port, free_port()
            say(f"port {taken} is in use; the Letzshop development server takes {letzshop_port}")
        env["LETZSHOP_ENDPOINT"] = f"http://127.0.0.1:{letzshop_port}/graphql"
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        say("DATABASE_URL/REDIS_URL unset: using the embedded PostgreSQL/Redis under var/")
    manage(python, "migrate", "--noinput", env=env)
    seed_output = manage(python, "seed_demo", env=env, capture=True)

    children: dict[str, subprocess.Popen] = {}

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    # A shell starting this in the background ignores SIGINT; Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Own process groups: Ctrl-C reaches this script only, and it stops the children
    # in order instead of everything dying at once.
    group = {"start_new_session": True} if os.name != "nt" else {}
    try:
        if start_letzshop:
            # The demo store's Letzshop account syncs from it (LETZSHOP_ENDPOINT).
            letzshop = children["Letzshop development server"] = subprocess.Popen(
                [str(python), "-m", "letzshop_dev", "--port", str(letzshop_port), "--seed"],
                cwd=ROOT, env=env, **group,
            )  # fmt: skip
            if not wait_for_port(letzshop_port, letzshop):
                say("the Letzshop development server did not start; see the messages above")
                return 1
        children["Celery worker"] = subprocess.Popen(
            [
                str(python), "-m", "celery", "-A", "wizamart", "worker",
                "--queues", QUEUES, "--beat",
                "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                "--concurrency", "2", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=env, **group,
        )  # fmt: skip
        web = children["web server"] = subprocess.Popen(
            [str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT, env=env, **group,
        )  # fmt: skip
        if not wait_for_port(port, web):
            say("the web server did not start; see the messages above")
            return 1
        print(banner(port, seed_output, env["LETZSHOP_ENDPOINT"]), flush=True)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    say(f"the {name} exited with code {child.returncode}; stopping")
                    return child.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping...")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(list(children.values()))
        say("stopped (the embedded PostgreSQL/Redis keep running for the next start)")


def command_stop() -> int:
    python = ensure_venv()
    code = (
        "import sys, pathlib; from wizamart.embedded import stop_servers; "
        "print(', '.join(stop_servers(pathlib.Path(sys.argv[1]))) or 'nothing')"
    )
    result = subprocess.run(
        [str(python), "-c", code, str(ROOT)], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode:
        say(f"could not stop the embedded servers:\n{result.stderr}")
        return result.returncode
    say(f"stopped: {result.stdout.strip()} (their data stays under var/)")
    return 0


def command_test(pytest_args: list[str]) -> int:
    python = ensure_venv()
    return subprocess.run([str(python), "-m", "pytest", *pytest_args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["test"]:
        # Everything after `test` belongs to pytest, untouched by argparse.
        try:
            return command_test(argv[1:])
        except subprocess.CalledProcessError as exc:
            say(f"failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}")
            return exc.returncode or 1
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="demo data, Celery worker + beat, web server")
    run.add_argument("--port", type=int, default=8000, help="web server port (8000)")
    run.add_argument(
        "--letzshop-port",
        type=int,
        default=LETZSHOP_DEV_PORT,
        help=f"Letzshop development server port ({LETZSHOP_DEV_PORT}; a free one if taken)",
    )
    commands.add_parser("test", help="run pytest; extra arguments are passed through")
    commands.add_parser("stop", help="stop the embedded PostgreSQL and Redis (data is kept)")
    args = parser.parse_args(argv)
    if args.command == "stop":
        return command_stop()
    try:
        return command_run(args.port, args.letzshop_port)
    except subprocess.CalledProcessError as exc:
        say(f"failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}")
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
