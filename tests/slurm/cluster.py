"""A throwaway single-node SLURM cluster for tests (Debian's slurmctld, slurmd, slurm-client, munge).

Usage::

    reason = cluster.unavailable_reason()     # None, or why this machine cannot run it
    with cluster.SlurmCluster(tmp_path) as c:  # installs (apt-get) if needed, starts munged/slurmctld/slurmd
        ...                                    # sbatch/squeue/scontrol talk to it
    # every daemon it started is stopped by pid; /etc/slurm files it replaced are restored

The daemons are started directly (no systemd), in the foreground (-D / -F), so their pids are the Popen pids.
slurm.conf has to live at /etc/slurm/slurm.conf: the SLURM executor's job step clears SLURM_CONF.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ETC = Path("/etc/slurm")
MARK = "ClusterName=ftstudy-test"  # in slurm.conf: a file with it was left by an earlier, killed test run
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "munged"]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def installed() -> bool:
    return all(_which(b) for b in BINARIES)


def unavailable_reason() -> str | None:
    """Why a SLURM test cannot run here (None if it can): needs root, and apt-get unless SLURM is installed."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "SLURM test needs a POSIX machine"
    if os.geteuid() != 0:
        return "SLURM test needs root (it installs Debian packages and starts slurmctld/slurmd/munged)"
    if installed():
        return None
    if not _which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install " + ", ".join(PACKAGES)
    return None


def install(log) -> None:
    """apt-get install the SLURM packages (apt-get update first if the plain install fails)."""
    if installed():
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log.write(res.stdout + res.stderr)
    if res.returncode != 0 or not installed():
        raise RuntimeError(
            f"apt-get could not install {' '.join(PACKAGES)} (rc {res.returncode}):\n{res.stderr[-3000:]}"
        )


def _die_with_parent() -> None:
    """Linux: the daemon gets SIGTERM when the process that started it dies, even if stop() never ran."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout: float, what: str, procs=()):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name, p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with rc {p.returncode} while waiting for {what}")
        if pred():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


class SlurmCluster:
    """Single-node SLURM on 127.0.0.1 with one fake GPU (gres gpu:fake:1).

    ``cpus`` and ``mem_mb`` are what the node declares (config_overrides; memory is not consumed), so rules
    may ask for more than this machine has. State, logs and the munge socket live under ``state_dir``.
    """

    def __init__(self, state_dir, cpus: int = 16, mem_mb: int = 256000):
        self.state = Path(state_dir).resolve()
        self.cpus = cpus
        self.mem_mb = mem_mb
        self.host = socket.gethostname().split(".")[0]
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._backups: dict[Path, Path | None] = {}
        self.munge_socket = self.state / "munge" / "munge.socket"
        self.install_log = self.state / "install.log"

    # ---- config files -------------------------------------------------------------------------------------
    def _render(self, name: str) -> str:
        text = (HERE / name).read_text()
        return text.format(
            host=self.host,
            state=self.state,
            cpus=self.cpus,
            mem_mb=self.mem_mb,
            ctld_port=self.ctld_port,
            slurmd_port=self.slurmd_port,
        )

    def _put(self, path: Path, text: str) -> None:
        if path not in self._backups:
            if path.exists() and MARK not in path.read_text(errors="replace"):
                backup = self.state / "etc-backup" / path.name
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, backup)
                self._backups[path] = backup
            else:
                self._backups[path] = None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _restore(self) -> None:
        for path, backup in self._backups.items():
            if backup is None:
                path.unlink(missing_ok=True)
            else:
                shutil.copy2(backup, path)
        self._backups.clear()

    # ---- daemons ------------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = open(self.state / f"{name}.out", "w")  # noqa: SIM115 (closed when the daemon ends)
        p = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or timeout aimed at the test's group is handled by stop()
            preexec_fn=_die_with_parent,
        )
        out.close()
        self.procs.append((name, p))
        return p

    def slurm_env(self) -> dict:
        env = dict(os.environ)
        env.pop("SLURM_CONF", None)
        return env

    def run(self, *argv: str, check: bool = True) -> str:
        res = subprocess.run(list(argv), capture_output=True, text=True, env=self.slurm_env(), timeout=60)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (rc {res.returncode}): {res.stderr}")
        return res.stdout

    def start(self) -> SlurmCluster:
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.install_log, "a") as log:
            install(log)
        for sub in ("ctld", "slurmd", "munge"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self.ctld_port = _free_port()
        self.slurmd_port = _free_port()
        try:
            self._start_munge()
            conf = self._render("slurm.conf") + f"AuthInfo=socket={self.munge_socket}\n"
            self._put(ETC / "slurm.conf", conf)
            self._put(ETC / "gres.conf", self._render("gres.conf"))
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
            _wait(self._ctld_up, 30, "slurmctld to answer", self.procs)
            self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.host])
            _wait(self._node_ready, 45, "the node to become idle", self.procs)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            mk = _which("mungekey")
            if mk:
                subprocess.run([mk, "--create", "--keyfile", str(key)], check=True)
            else:
                key.write_bytes(os.urandom(1024))
            key.chmod(0o600)
        sock_dir = self.munge_socket.parent
        sock_dir.chmod(0o755)
        self._spawn(
            "munged",
            [
                _which("munged"),
                "-F",
                "--force",
                f"--socket={self.munge_socket}",
                f"--pid-file={sock_dir / 'munged.pid'}",
                f"--seed-file={sock_dir / 'munged.seed'}",
                f"--log-file={sock_dir / 'munged.log'}",
                f"--key-file={key}",
            ],
        )
        _wait(self.munge_socket.exists, 15, "munged's socket", self.procs)

    def _ctld_up(self) -> bool:
        try:
            return self.run("scontrol", "ping", check=False).find("UP") >= 0
        except subprocess.TimeoutExpired:
            return False

    def _node_ready(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).split()
        if out and out[0].rstrip("*~#") in ("drain", "drng", "down"):
            # config_overrides makes slurmd report the configured sizes; resume a node left down by a restart
            self.run("scontrol", "update", f"NodeName={self.host}", "State=RESUME", check=False)
        return bool(out) and out[0].rstrip("*") in ("idle", "mix", "alloc")

    def stop(self) -> None:
        """Cancel leftover jobs, stop every daemon this object started (by pid), restore /etc/slurm."""
        if any(n == "slurmctld" and p.poll() is None for n, p in self.procs):
            try:
                self.run("scancel", "--user", "root", check=False)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self._restore()

    def alive_pids(self) -> list[int]:
        return [p.pid for _n, p in self.procs if p.poll() is None]

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
