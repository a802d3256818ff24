"""Starts one pod container as a local process in its own mount namespace.

    python -I -S launcher.py SPEC.json

Run by the node agent (standard library only, so it starts fast). SPEC holds argv, env,
working dir, uid/gid, and mounts {source, target, readonly, kind: dir|file}.

Processes: this launcher (waits, survives the agent's SIGTERM) -> the container's init,
pid 1 of a new pid namespace (forwards signals, reaps orphans) -> the main process. When
the main process exits, init exits with its code and the kernel kills whatever else the
container started; when the agent dies, parent-death signals take down the chain.

How mount targets that do not exist on the host (`/data`, `/dev/termination-log`,
`/var/run/secrets/kubernetes.io/serviceaccount`) are made without writing to the host:
the container gets a new root, a tmpfs that mirrors the host's `/` (one recursive bind
mount per top-level entry), entered with chroot. When a target's parent is missing, the
nearest bound folder on its path (say `/dev` or `/run`) is replaced, in this namespace
only, by a tmpfs mirroring that folder's entries, and the missing folders or file are
made in the tmpfs. A target under another volume is made inside that volume, as
container runtimes do. All of it disappears with the namespace when the last process of
the container exits; the host filesystem is left as it was.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def umount(target: str) -> None:
    _check(libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


class NewRoot:
    """A tmpfs root mirroring the host's, where folders are replaced by tmpfs mirrors
    on demand so that missing mount points can be made."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.mirrored: set[str] = set()  # paths (in the new root) that are tmpfs mirrors

    def host(self, path: str) -> str:
        return self.root + path

    def create(self) -> None:
        mount("tmpfs", self.root, "tmpfs", MS_NOSUID, "mode=755")
        self._mirror("/")

    def _mirror(self, path: str) -> None:
        """Fills the (fresh tmpfs) folder `path` of the new root with the host's entries
        of the same folder: folders by recursive bind, files and devices by bind,
        symlinks copied."""
        with os.scandir(path) as entries:
            for entry in entries:
                src = entry.path
                dst = self.host(src if path != "/" else "/" + entry.name)
                try:
                    if entry.is_symlink():
                        os.symlink(os.readlink(src), dst)
                    elif entry.is_dir(follow_symlinks=False):
                        os.mkdir(dst, 0o755)
                        mount(src, dst, None, MS_BIND | MS_REC)
                    else:
                        open(dst, "w").close()
                        mount(src, dst, None, MS_BIND)
                except OSError as exc:  # an unreadable entry is left out, not fatal
                    print(f"launcher: skipped {src}: {exc}", file=sys.stderr)
        self.mirrored.add(path)

    def resolve(self, path: str) -> str:
        """`path` with symlinks resolved inside the new root; components from the first
        missing one on are kept as given."""
        parts = [p for p in path.split("/") if p]
        current = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = os.path.dirname(current)
                continue
            candidate = os.path.join(current, part)
            full = self.host(candidate)
            if os.path.islink(full):
                hops += 1
                if hops > 40:
                    raise OSError(f"too many levels of symbolic links in {path}")
                target = os.readlink(full)
                if target.startswith("/"):
                    current = "/"
                parts = [p for p in target.split("/") if p] + parts
                continue
            if not os.path.lexists(full):
                return os.path.join(candidate, *parts)
            current = candidate
        return current

    def make_writable(self, folder: str) -> None:
        """Turns every bound folder from the nearest tmpfs mirror down to `folder`
        into a tmpfs mirror, so new entries can be made in `folder`."""
        chain = []
        node = folder
        while node not in self.mirrored:
            chain.append(node)
            node = os.path.dirname(node)
        for path in reversed(chain):
            if path in ("/proc", "/sys") or path.startswith(("/proc/", "/sys/")):
                raise OSError(f"cannot make a mount point under {path}")
            umount(self.host(path))
            mount("tmpfs", self.host(path), "tmpfs", MS_NOSUID, "mode=755")
            self._mirror(path)


def closed_ancestors(paths: list[str]) -> list[str]:
    """The folders on the way to each of ``paths`` (themselves included) that others may
    not enter (no o+x), outermost first."""
    closed: set[str] = set()
    for path in paths:
        node = os.path.normpath(path)
        while True:
            try:
                if os.path.isdir(node) and not os.stat(node).st_mode & 0o001:
                    closed.add(node)
            except OSError:
                pass
            if node == "/":
                break
            node = os.path.dirname(node)
    return sorted(closed, key=lambda p: p.count("/"))


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def prepare_mounts(new_root: NewRoot, mounts: list[dict]) -> list[tuple[dict, str]]:
    """Makes every missing mount point (before any volume is mounted, so that turning a
    folder into a mirror never hides a volume). Returns (mount, resolved target) pairs
    in mount order: parents before children."""
    planned: list[tuple[dict, str]] = []
    for m in sorted(mounts, key=lambda m: os.path.normpath(m["target"]).count("/")):
        target = os.path.normpath(m["target"])
        outer = next((p for p in reversed(planned)
                      if p[0]["kind"] == "dir" and p[0].get("source")
                      and _is_under(target, p[1]) and target != p[1]),
                     None)
        if outer is not None:
            # Inside another volume: make the mount point in that volume's folder.
            rel = os.path.relpath(target, outer[1])
            point = os.path.join(outer[0]["source"], rel)
            _make_point(point, m["kind"])
            planned.append((m, target))
            continue
        resolved = new_root.resolve(target)
        full = new_root.host(resolved)
        if not os.path.lexists(full):
            parent = os.path.dirname(resolved)
            existing = parent
            while not os.path.lexists(new_root.host(existing)):
                existing = os.path.dirname(existing)
            new_root.make_writable(existing)
            _make_point(full, m["kind"])
        planned.append((m, resolved))
    return planned


def _make_point(path: str, kind: str) -> None:
    if kind == "dir":
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.lexists(path):
            open(path, "w").close()


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def report_start_error(error_fd: int, exc: OSError) -> None:
    """What a container runtime reports as StartError: the agent reads the file back."""
    message = str(exc) if exc.filename else (exc.strerror or str(exc))
    print(f"launcher: {message}", file=sys.stderr)
    os.write(error_fd, message.encode())


def main(spec: dict) -> int:
    # Die with the node agent, even if it is SIGKILLed.
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    if os.getppid() != spec["parent_pid"]:
        return 1  # the agent died before prctl took effect
    # Opened before chroot and setuid: whoever fails to start writes here.
    error_fd = os.open(spec["start_error_file"],
                       os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        # A mount namespace for the container's view of files, a pid namespace so that
        # every process of the container ends when its main process does.
        _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
        mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
        new_root = NewRoot(spec["root"])
        new_root.create()
        if spec.get("uid"):
            # The interpreter and the project stand in for the image: they may live under
            # a folder others cannot enter (root's home, a mktemp -d folder). Give a
            # non-root container a traversable mirror of every such folder on their way.
            for folder in closed_ancestors(spec.get("traverse", [])):
                new_root.make_writable(folder)
        cwd = spec.get("working_dir") or "/"
        for m, target in prepare_mounts(new_root, list(spec["mounts"]) + [
                {"source": None, "target": cwd, "kind": "dir", "readonly": False, "cwd": True}]):
            if m.get("cwd"):
                continue
            full = new_root.host(target)
            mount(m["source"], full, None, MS_BIND | (MS_REC if m["kind"] == "dir" else 0))
            if m.get("readonly"):
                mount(None, full, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        os.chroot(new_root.root)
        os.chdir(cwd)
    except OSError as exc:
        report_start_error(error_fd, exc)
        return 128

    # The node agent signals this process group; the container's init forwards what
    # its main process did not get. This process only waits, and outlives the signals.
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda *_: None)
    init = os.fork()
    if init == 0:
        code = 128
        try:
            code = container_init(spec, error_fd)
        except OSError as exc:
            report_start_error(error_fd, exc)
        finally:
            os._exit(code)  # never return into the launcher's code
    while True:
        pid, status = os.waitpid(init, 0)
        if pid == init:
            return exit_code(status)


def find_executable(name: str, path: str) -> str:
    """PATH lookup as execvp does it, without os.execvpe's lazy imports (the standard
    library may be out of reach once the user changed)."""
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(folder or ".", name) for folder in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise OSError(2, f'exec: "{name}": executable file not found in $PATH')


def container_init(spec: dict, error_fd: int) -> int:
    """Pid 1 of the container: starts the main process, forwards signals to it, reaps
    orphans, and exits with the main process's code, whereupon the kernel ends every
    other process of the pid namespace."""
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # pids as seen inside
    main_pid = os.fork()
    if main_pid == 0:
        try:
            for sig in FORWARDED_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            if spec.get("gid") is not None:
                os.setgroups([])
                os.setgid(spec["gid"])
            if spec.get("uid") is not None:
                os.setuid(spec["uid"])
            argv = spec["argv"]
            env = spec["env"]
            os.execve(find_executable(argv[0], env.get("PATH", "")), argv, env)
        except OSError as exc:
            report_start_error(error_fd, exc)
        except BaseException as exc:  # never fall back into the init's code
            report_start_error(error_fd, OSError(0, f"{type(exc).__name__}: {exc}"))
        os._exit(128)

    def forward(sig: int, _frame) -> None:
        # A main process still in the agent's process group got the signal already.
        try:
            if os.getpgid(main_pid) != os.getpgrp():
                os.kill(main_pid, sig)
        except ProcessLookupError:
            pass

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == main_pid:
            return exit_code(status)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        launch_spec = json.load(f)
    sys.exit(main(launch_spec))
