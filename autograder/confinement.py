"""The command prefix that confines the process running student code.

Three levels, strongest first; `choose` probes them once per grader process:

- `bubblewrap`: bwrap(1) gives the child new network (no interface but its
  own loopback), PID, IPC and UTS namespaces. Its read-only view of the
  file system holds only the system libraries, the Python environment,
  `lm_support` and the `autograder` modules the child imports (`worker`,
  `channel`, `nbgrader_cells`, `check_report` and the package's `__init__`). Solutions, the grading
  suites, `reference_ops`, the weights cache, report paths and Unix sockets
  are not in that view. Its only writable place is a small private tmpfs
  at /tmp. Run as root, the grader
  switches the child to an unused unprivileged user id with no capabilities.
  Run as another user, bwrap uses a user namespace, in which it drops all
  capabilities.
- `namespaces`: unshare(1) gives network and PID namespaces only. The child
  shares the grader's file system. A root grader switches it to an
  unprivileged user where that user can run the interpreter.
- `none`: rlimits only.

Every level runs the child under prlimit(1) rlimits, and setpriv(1) sends
it SIGKILL if the grader dies.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

LEVELS = ("bubblewrap", "namespaces", "none")
MODES = ("auto", *LEVELS)

# Sets the mode wherever a caller does not name one: `lm-grade batch` workers,
# nbgrader test cells and Gradescope's run_autograder included.
MODE_ENV_VAR = "LM_GRADE_ISOLATION"

# When the grader runs as root, each child gets its own user id from this
# range. RLIMIT_NPROC counts per user, so concurrent graders do not share
# one process budget. No files belong to these ids.
SANDBOX_UID_BASE = 200_000
SANDBOX_UID_COUNT = 60_000

TMPFS_BYTES = 64 * 1024**2  # the child's only writable space, /tmp

# The modules the child imports from `autograder`: the worker, and
# `nbgrader_cells` (with `check_report`, which it imports), whose `check`
# every lab notebook imports. The rest of the
# package (suites, reference_ops, grading) stays out of its file system view.
_CHILD_MODULES = ("__init__.py", "channel.py", "worker.py", "nbgrader_cells.py", "check_report.py")

_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")

_uid_counter = itertools.count()


class IsolationUnavailable(RuntimeError):
    """The requested isolation level does not work on this machine."""


@dataclasses.dataclass(frozen=True)
class Confinement:
    """The confinement of children, as chosen by `choose`."""

    level: str
    prefix: tuple[str, ...]  # namespaces and file system view, before the user switch
    private_tmp: bool  # the child's /tmp is its own tmpfs, and its working directory
    drops_user: bool  # a root grader's child switches to an unprivileged user id

    def command(self) -> tuple[list[str], int | None]:
        """Return the command before the interpreter, and the child's new user id if any."""
        if not self.drops_user:
            return list(self.prefix), None
        uid = next_sandbox_uid()
        return [*self.prefix, *drop_user_command(uid)], uid


def _tool(name: str) -> str | None:
    path = shutil.which(name)
    if path is None:
        logger.debug("%s(1) not found", name)
    return path


def _system_view() -> list[str]:
    """Return bwrap arguments for the system directories and a few /etc files."""
    arguments = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            arguments += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            arguments += ["--ro-bind", name, name]
    for name in _ETC_FILES:
        arguments += ["--ro-bind-try", name, name]
    return arguments


def _python_view() -> list[str]:
    """Return bwrap arguments for the interpreter, its packages and the kit."""
    import lm_support

    folders = {sys.base_prefix, sys.prefix, sys.exec_prefix, *site.getsitepackages()}
    folders.add(str(Path(sys.executable).resolve().parent.parent))
    arguments = []
    # Parents before children, so a nested folder is not hidden by its parent's bind.
    for folder in sorted(folders, key=lambda path: len(Path(path).parts)):
        if folder.startswith("/usr/") or not os.path.isdir(folder):
            continue
        arguments += ["--ro-bind", folder, folder]

    lm_support_dir = str(Path(lm_support.__file__).resolve().parent)
    arguments += ["--ro-bind", lm_support_dir, lm_support_dir]

    # A tmpfs over the package hides its other files even when it is
    # installed inside site-packages, bound above.
    autograder_dir = Path(__file__).resolve().parent
    arguments += ["--tmpfs", str(autograder_dir)]
    for name in _CHILD_MODULES:
        arguments += ["--ro-bind", str(autograder_dir / name), str(autograder_dir / name)]
    arguments += ["--remount-ro", str(autograder_dir)]
    return arguments


def _parent_folders(arguments: list[str]) -> list[str]:
    """Return bwrap arguments that create the parents of bound paths, readable by all.

    bwrap creates missing parents with mode 0700, which an unprivileged
    child could not enter.
    """
    parents = set()
    for option, *_, destination in _bind_triples(arguments):
        if option in ("--ro-bind", "--ro-bind-try", "--tmpfs", "--symlink"):
            parents.update(str(parent) for parent in Path(destination).parents if str(parent) not in ("/", "/tmp"))
    folders = []
    for parent in sorted(parents, key=lambda path: len(Path(path).parts)):
        folders += ["--perms", "0755", "--dir", parent]
    return folders


def _bind_triples(arguments: list[str]) -> list[tuple[str, ...]]:
    """Split bwrap arguments into (option, operands...) groups."""
    operand_counts = {"--ro-bind": 2, "--ro-bind-try": 2, "--symlink": 2, "--tmpfs": 1, "--remount-ro": 1}
    groups, index = [], 0
    while index < len(arguments):
        option = arguments[index]
        count = operand_counts[option]
        groups.append(tuple(arguments[index:index + count + 1]))
        index += count + 1
    return groups


def _bubblewrap_prefix() -> tuple[str, ...] | None:
    bwrap = _tool("bwrap")
    if bwrap is None:
        return None
    view = [*_system_view(), *_python_view()]
    arguments = [
        bwrap,
        # The private /tmp comes first, so that a kit installed under /tmp
        # is bound on top of it rather than hidden by it.
        "--size", str(TMPFS_BYTES), "--perms", "1777", "--tmpfs", "/tmp",
        *_parent_folders(view),
        *view,
        "--proc", "/proc",
        "--dev", "/dev",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent",
        "--chdir", "/tmp",
    ]
    if os.getuid() != 0:
        # Without root, bwrap needs a user namespace, in which it keeps no capabilities.
        arguments.append("--unshare-user")
    return tuple(arguments)


def _namespace_prefix() -> tuple[str, ...] | None:
    unshare = _tool("unshare")
    if unshare is None:
        return None
    command = [unshare, "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.getuid() != 0:
        command.insert(1, "--map-root-user")
    return tuple(command)


def _probe(confinement: Confinement) -> str | None:
    """Start a Python child as a real child would be; return why it failed, or None."""
    prefix, _ = confinement.command()
    command = [*prefix, sys.executable, "-I", "-c", "import autograder.worker"]
    try:
        probe = subprocess.run(command, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if probe.returncode != 0:
        return probe.stderr.decode(errors="replace").strip()[-2000:] or f"exit status {probe.returncode}"
    logger.debug("Isolation level %s works", confinement.level)
    return None


def choose(mode: str | None = None) -> Confinement:
    """Return the strongest working level, or exactly `mode` unless it is "auto".

    `mode` None reads `$LM_GRADE_ISOLATION`, and "auto" where that is unset.

    Raises:
      IsolationUnavailable: `mode` names a level that does not work here.
      ValueError: `mode` is not one of `MODES`.
    """
    if mode is None:
        mode = os.environ.get(MODE_ENV_VAR) or "auto"
    if mode not in MODES:
        raise ValueError(f"Unknown isolation mode {mode!r}; choose one of {', '.join(MODES)} "
                         f"(from the argument or ${MODE_ENV_VAR}).")
    return _choose(mode)


@functools.cache
def _choose(mode: str) -> Confinement:
    candidates = LEVELS if mode == "auto" else (mode,)
    failures = []
    for level in candidates:
        if level == "none":
            prefix = ()
        else:
            prefix = _bubblewrap_prefix() if level == "bubblewrap" else _namespace_prefix()
            if prefix is None:
                failures.append(f"{level} failed ({'bwrap' if level == 'bubblewrap' else 'unshare'}(1) was not found)")
                continue

        # A root grader's child always gets an unprivileged user in bwrap's
        # view. On the shared file system that user may be unable to read
        # the interpreter (under /root, say), so there it may stay root.
        is_root = os.getuid() == 0 and shutil.which("setpriv") is not None
        if not is_root:
            user_options = (False,)
        elif level == "bubblewrap":
            user_options = (True,)
        else:
            user_options = (True, False)
        for drops_user in user_options:
            confinement = Confinement(level, prefix, private_tmp=level == "bubblewrap", drops_user=drops_user)
            reason = _probe(confinement)
            if reason is None:
                if failures:
                    logger.warning("Student code runs with isolation level %r: %s", level, "; ".join(failures))
                if is_root and not drops_user:
                    logger.warning("Student code runs as root: an unprivileged user cannot run the interpreter")
                return confinement
            failures.append(f"{level}{'' if drops_user else ' as root'} failed ({reason})")

    raise IsolationUnavailable(
        f"Isolation level {mode!r} does not work on this machine: {'; '.join(failures)}. "
        "Install bubblewrap (for example `apt-get install bubblewrap`) and allow it to create "
        "namespaces, or choose --isolation auto."
    )


def next_sandbox_uid() -> int:
    """Return a user id for a new child of a root grader."""
    return SANDBOX_UID_BASE + (os.getpid() * 101 + next(_uid_counter)) % SANDBOX_UID_COUNT


def drop_user_command(uid: int) -> list[str]:
    """Return the setpriv(1) command that switches to `uid` with no capabilities."""
    return [
        shutil.which("setpriv") or "setpriv",
        f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
        "--",
    ]
