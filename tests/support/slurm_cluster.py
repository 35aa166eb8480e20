"""A one-node Slurm cluster in a temporary folder (Debian's slurm-wlm and munge, as root): munged with a key
of its own, slurmctld and slurmd on free loopback ports, two fake GPUs as gres (character devices with
NVIDIA's major number, so Slurm hands each task its own CUDA_VISIBLE_DEVICES). Nothing under /etc is used."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from farm_procs import free_ports

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scancel", "squeue", "sinfo")


def slurm_missing() -> str:
    """Why this machine cannot run the cluster ('' when it can)."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return f"{', '.join(missing)} not installed (.ci/run installs Debian's slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "the one-node Slurm cluster runs its daemons as root"
    return ""


class SlurmCluster:
    def __init__(self, root: Path, gpus: int = 2):
        self.root, self.procs = root, []
        for sub in ("munge", "state", "spool", "log", "dev"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "munge", 0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = root / "munge" / "socket"
        for i in range(gpus):
            os.mknod(root / "dev" / f"nvidia{i}", 0o600 | 0o020000, os.makedev(195, i))  # char devices
        port = free_ports(2)
        host = socket.gethostname()
        gres = f" Gres=gpu:{gpus}" if gpus else ""
        (root / "slurm.conf").write_text(f"""\
ClusterName=synthfarmtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={port}
SlurmdPort={port + 1}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
KillWait=10
InactiveLimit=0
GresTypes=gpu
NodeName=node0 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 2} RealMemory=4000{gres} State=UNKNOWN
PartitionName=test Nodes=node0 Default=YES MaxTime=INFINITE State=UP
""")
        (root / "gres.conf").write_text(f"NodeName=node0 Name=gpu File={root / 'dev'}/nvidia[0-{gpus - 1}]\n"
                                        if gpus else "")
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}

    def start(self, timeout: float = 60) -> "SlurmCluster":
        m = self.root / "munge"
        self._spawn(["munged", "--foreground", "--force", f"--key-file={m / 'munge.key'}",
                     f"--socket={self.munge_socket}", f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}",
                     f"--seed-file={m / 'munged.seed'}"], "munged")
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged")
        conf = str(self.root / "slurm.conf")
        self._spawn(["slurmctld", "-D", "-f", conf], "slurmctld")
        self._spawn(["slurmd", "-D", "-f", conf, "-N", "node0"], "slurmd")
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle", timeout,
                   "the node to be idle")
        return self

    def _spawn(self, cmd, name):
        log = open(self.root / "log" / f"{name}.out", "wb")
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.3)
        logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-2000:]}"
                         for f in sorted((self.root / "log").glob("*")))
        raise RuntimeError(f"Slurm test cluster: timed out waiting for {what}\n{logs}")

    def run(self, *cmd, check=True, **kw):
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=60, **kw)

    def tasks(self, job: str) -> dict[str, str]:
        """{array task id: state} of an array job (running and pending tasks)."""
        out = self.run("squeue", "-h", "-r", "-j", job, "-o", "%K %T", check=False).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def stop(self):
        self.run("scancel", "--full", "-u", "root", check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
            time.sleep(0.5)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
