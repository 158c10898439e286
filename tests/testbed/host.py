"""A fake EC2 host: network namespace + veth + private mount namespace + real sshd + its own dockerd.

Layout of one host <name> (index i):
  netns  lstb-<name>, veth lstbv<i> (machine side, enslaved to bridge lstb0 169.254.64.1/24) <-> eth0 in the
         netns with 169.254.64.(10+i)/24 and no default route (a host can reach the machine and the other hosts,
         nothing else).
  holder a `sleep infinity` started by `unshare --mount --propagation private` inside the netns; its mount
         namespace is the host's, and sshd/dockerd join it with `nsenter --net=... --mount=...`
         (not `ip netns exec`, which remounts /sys and breaks dockerd).
  binds  inside that mount namespace, per-host directories under DATA_ROOT/<name>/ are bound over PRIVATE_DIRS,
         so /srv, /etc/labstack, /opt/labstack, /var/lib/docker, /run, /tmp, /home/ubuntu, /root ... belong to
         the host: the deploy hooks write there and two hosts never share them.
  sshd   own sshd_config and ed25519 host key, port 22, key-only login for `ubuntu`.
  dockerd own data root (/var/lib/docker inside), socket /run/docker.sock inside (= /var/run/docker.sock, so
         plain `docker` in an ssh session talks to this host's engine), bridge and pools in 169.254.192.0/18.
         From the machine the same socket is RUN_ROOT/<name>/run/docker.sock (`docker_url`).

Everything started is recorded in RUN_ROOT/<name>/state.json (PIDs with their start times, so a later session can
clean up after a crashed one without ever signalling a process that is not ours).
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import sys
import time
from pathlib import Path

from . import power
from .locks import file_lock

RUN_ROOT = Path(os.environ.get("LABSTACK_TESTBED_RUN", "/run/labstack-testbed"))
DATA_ROOT = Path(os.environ.get("LABSTACK_TESTBED_DATA", "/var/lib/labstack-testbed"))
BRIDGE = "lstb0"
FORWARD_CHAIN = "LSTB-FORWARD"
BRIDGE_NET = ipaddress.ip_network("169.254.64.0/24")
BRIDGE_IP = "169.254.64.1"
HOST_IP_BASE = 10          # host i gets 169.254.64.(10+i)
MAX_HOSTS = 8              # 169.254.192.0/18 split in /21 per host
SLOT_WAIT_SECONDS = 300
DOCKER_NET = ipaddress.ip_network("169.254.192.0/18")
USER = "ubuntu"
DOCKER_CLI = shutil.which("docker", path="/usr/local/bin:/usr/bin") or "docker"
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (path inside the host, subdirectory of DATA_ROOT/<name>, mode, owner). Paths the deploy hooks may write.
PRIVATE_DIRS = [
    ("/srv", "srv", 0o755, "root"),
    ("/etc/labstack", "etc-labstack", 0o755, "root"),
    ("/opt/labstack", "opt-labstack", 0o755, "root"),
    ("/var/lib/labstack", "var-lib-labstack", 0o755, "root"),
    ("/etc/docker", "etc-docker", 0o755, "root"),
    ("/etc/systemd/system", "etc-systemd-system", 0o755, "root"),  # units a hook installs (the watcher's timer)
    ("/var/lib/docker", "var-lib-docker", 0o711, "root"),
    ("/tmp", "tmp", 0o1777, "root"),
    ("/root", "root-home", 0o700, "root"),
    (f"/home/{USER}", "home-ubuntu", 0o755, USER),
    ("/run", None, 0o755, "root"),   # RUN_ROOT/<name>/run: the socket must be reachable from the machine
]


class TestbedError(RuntimeError):
    pass


def private_root(path: Path) -> str | None:
    """The host's private folder (PRIVATE_DIRS) that hides `path` inside every host, if any. The bed's own folders
    must not be hidden: hosts bind files from them (the power switch, /etc/hosts) after the private folders."""
    for inside, _sub, _mode, _owner in PRIVATE_DIRS:
        if inside != "/run" and path.resolve().is_relative_to(inside):
            return inside
    return None


# --------------------------------------------------------------------------------------------------- helpers
def sh(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if check and p.returncode != 0:
        raise TestbedError(f"{' '.join(map(str, cmd))} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of pid, or None; (pid, start) identifies a process uniquely."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def proc_alive(rec: dict) -> bool:
    return proc_start_time(rec["pid"]) == rec["start"]


def proc_record(pid: int, role: str) -> dict:
    start = None
    for _ in range(50):
        start = proc_start_time(pid)
        if start is not None:
            break
        time.sleep(0.01)
    return {"pid": pid, "start": start, "role": role}


def kill_record(rec: dict, sig=signal.SIGTERM, wait: float = 20.0) -> None:
    """Signal one recorded process (only if it is still the very process we started), wait, then SIGKILL."""
    if not proc_alive(rec):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec["pid"], sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc_alive(rec):
        _reap(rec["pid"])
        time.sleep(0.05)
    if proc_alive(rec):
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec["pid"], signal.SIGKILL)
        for _ in range(100):
            _reap(rec["pid"])
            if not proc_alive(rec):
                break
            time.sleep(0.05)
    _reap(rec["pid"])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def bed_lock():
    """Serialise index allocation and bridge create/remove between concurrent sessions on one machine."""
    return file_lock(RUN_ROOT / ".lock")


def owner_record() -> dict:
    return proc_record(os.getpid(), "owner")


def read_states() -> list[dict]:
    out = []
    for p in sorted(RUN_ROOT.glob("*/state.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(p.read_text()))
    return out


def _write_state(state: dict) -> None:
    d = RUN_ROOT / state["name"]
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(d / "state.json")


def ensure_bridge() -> None:
    if sh(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        return
    sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
    sh(["ip", "addr", "add", f"{BRIDGE_IP}/{BRIDGE_NET.prefixlen}", "dev", BRIDGE])
    sh(["ip", "link", "set", BRIDGE, "up"])
    rec = {"bridge": BRIDGE, "owner": owner_record(), "iptables_chain": None}
    (RUN_ROOT / "bridge.json").write_text(json.dumps(rec))
    # With br_netfilter loaded (every dockerd loads it), frames between two hosts on the bridge traverse the
    # machine's FORWARD chain. Only if that chain does not accept by default do we add our own chain letting
    # lstb0<->lstb0 through; it is recorded and removed with the bridge.
    policy = sh(["iptables", "-S", "FORWARD"], check=False).stdout.splitlines()[:1]
    if policy and policy[0] != "-P FORWARD ACCEPT":
        sh(["iptables", "-N", FORWARD_CHAIN])
        rec["iptables_chain"] = FORWARD_CHAIN
        (RUN_ROOT / "bridge.json").write_text(json.dumps(rec))
        sh(["iptables", "-A", FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
        sh(["iptables", "-I", "FORWARD", "1", "-j", FORWARD_CHAIN])


def remove_bridge_if_unused() -> None:
    """Remove lstb0 once no host state remains (only if we created it: bridge.json says so)."""
    with bed_lock():
        if read_states() or not (RUN_ROOT / "bridge.json").exists():
            return
        with contextlib.suppress(OSError, ValueError):
            if json.loads((RUN_ROOT / "bridge.json").read_text()).get("iptables_chain") == FORWARD_CHAIN:
                sh(["iptables", "-D", "FORWARD", "-j", FORWARD_CHAIN], check=False)
                sh(["iptables", "-F", FORWARD_CHAIN], check=False)
                sh(["iptables", "-X", FORWARD_CHAIN], check=False)
        if sh(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            sh(["ip", "link", "del", BRIDGE], check=False)
        (RUN_ROOT / "bridge.json").unlink(missing_ok=True)


def ensure_user() -> None:
    """An EC2-Ubuntu-like login: user `ubuntu`, docker group, passwordless sudo, no usable password.
    Created once on the machine (hosts share /etc/passwd); each host binds its own /home/ubuntu."""
    sh(["groupadd", "-f", "docker"])
    if sh(["getent", "passwd", USER], check=False).returncode != 0:
        sh(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--groups", "docker", USER])
    else:
        sh(["usermod", "-aG", "docker", USER])
    # '*' = no password can match, but the account is not "locked" ('!'), which sshd without PAM would refuse
    sh(["usermod", "-p", "*", USER])
    sudoers = Path("/etc/sudoers.d/90-labstack-testbed-ubuntu")
    want = f"# labstack test bed: like cloud-init's 90-cloud-init-users on EC2\n{USER} ALL=(ALL) NOPASSWD:ALL\n"
    if not sudoers.exists() or sudoers.read_text() != want:
        sudoers.parent.mkdir(mode=0o750, exist_ok=True)
        tmp = sudoers.with_name(".labstack-testbed.tmp")
        tmp.write_text(want)
        tmp.chmod(0o440)
        sh(["visudo", "-cf", str(tmp)])
        tmp.replace(sudoers)


def _docker_ping(sock: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(str(sock))
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        return b" 200 " in s.recv(64)
    except OSError:
        return False
    finally:
        s.close()


def _tcp_open(ip: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            return s.recv(4).startswith(b"SSH") if port == 22 else True
    except OSError:
        return False


def wait_for(pred, what: str, timeout: float, interval: float = 0.1, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    tail = ""
    if log and log.exists():
        tail = "\n--- " + str(log) + " (tail) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


# ------------------------------------------------------------------------------------------------ the host
class TestbedHost:
    """One fake EC2 server. Create with TestbedHost.start(name); stop() removes every trace of it."""

    __test__ = False  # not a pytest test class

    def __init__(self, state: dict):
        self.state = state
        self.name: str = state["name"]
        self.index: int = state["index"]
        self.ip: str = state["ip"]
        self.user: str = USER
        self.port = 22
        self.run_dir = Path(state["run_dir"])
        self.data_dir = Path(state["data_dir"])
        self.key_path = self.run_dir / "id_ed25519"
        self.known_hosts_path = self.run_dir / "known_hosts"
        self.host_public_key: str = state["host_public_key"]
        self.docker_sock = self.run_dir / "run" / "docker.sock"
        self.docker_url = f"unix://{self.docker_sock}"
        self.netns = state["netns"]
        self.hostname = "ip-" + self.ip.replace(".", "-")
        self._stopped = False

    def __repr__(self) -> str:
        return f"<TestbedHost {self.name} {self.ip}>"

    # ----------------------------------------------------------------------------------------- addresses
    @staticmethod
    def docker_networks(index: int) -> tuple[str, list[str]]:
        """(bip, pools) for host index: a /21 of 169.254.192.0/18 per host; the first /24 is docker0,
        the remaining seven /24s are the address pools compose networks come from."""
        block = list(DOCKER_NET.subnets(new_prefix=21))[index]
        s24 = list(block.subnets(new_prefix=24))
        bip = f"{s24[0].network_address + 1}/24"
        pools = [f"base={s24[1]},size=24", f"base={s24[2].supernet(new_prefix=23)},size=24",
                 f"base={s24[4].supernet(new_prefix=22)},size=24"]
        return bip, pools

    def known_hosts_line(self) -> str:
        return f"{self.ip} {self.host_public_key}"

    # ----------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def start(cls, name: str, host_key: str | None = None, log=print, seed: Path | None = None) -> "TestbedHost":
        """Start a host. host_key: an OpenSSH private key text to use as the ed25519 host key (e.g. the key the
        Pulumi program generated and cloud-init would install); default: a fresh one. seed: a stopped engine's
        data root (see ensure_engine_seed) cloned into this host before its dockerd starts, so images are there
        without a `docker load`."""
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,11}", name):
            raise ValueError(f"host name {name!r}: use 1-12 of [a-z0-9-], starting with a letter")
        hidden = private_root(DATA_ROOT) or private_root(RUN_ROOT)
        if hidden:
            raise TestbedError(f"LABSTACK_TESTBED_DATA/LABSTACK_TESTBED_RUN ({DATA_ROOT}, {RUN_ROOT}) must not be "
                               f"under {hidden}, which every host replaces with its own; use e.g. "
                               "/var/lib/labstack-testbed and /run/labstack-testbed")
        # All slots taken (another session, or a parallel suite, holds them): wait a bounded time for one.
        deadline = time.monotonic() + SLOT_WAIT_SECONDS
        while True:
            with bed_lock():
                ensure_user()
                states = read_states()
                if any(s["name"] == name for s in states):
                    raise TestbedError(f"test bed host {name!r} already exists (state in {RUN_ROOT / name})")
                used = {s["index"] for s in states}
                free = [i for i in range(MAX_HOSTS) if i not in used]
                if free:
                    index = free[0]
                    ensure_bridge()
                    state = {
                        "name": name, "index": index, "ip": str(BRIDGE_NET.network_address + HOST_IP_BASE + index),
                        "netns": f"lstb-{name}", "veth": f"lstbv{index}", "owner": owner_record(),
                        "run_dir": str(RUN_ROOT / name), "data_dir": str(DATA_ROOT / name),
                        "cgroup_parent": f"labstack-testbed-{name}", "procs": [], "host_public_key": "",
                    }
                    _write_state(state)  # recorded before anything is created, so a crash is cleanable
                    break
            if time.monotonic() > deadline:
                raise TestbedError(f"at most {MAX_HOSTS} test bed hosts at once, and none was freed in "
                                   f"{SLOT_WAIT_SECONDS}s")
            time.sleep(2)
        host = cls(state)
        try:
            host._create(host_key, seed)
        except BaseException:
            host.stop()
            raise
        return host

    def _save(self) -> None:
        _write_state(self.state)

    def _add_proc(self, pid: int, role: str) -> dict:
        rec = proc_record(pid, role)
        self.state["procs"].append(rec)
        self._save()
        return rec

    def _create(self, host_key: str | None, seed: Path | None = None) -> None:
        st = self.state
        # ---- directories
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o755)
        (self.data_dir / "ssh").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        run = self.run_dir / "run"
        self._prepare_run()
        import pwd
        ubuntu = pwd.getpwnam(USER)
        for inside, sub, mode, owner in PRIVATE_DIRS:
            if sub is None:
                continue
            d = self.data_dir / sub
            d.mkdir(exist_ok=True)
            d.chmod(mode)
            if owner == USER:
                os.chown(d, ubuntu.pw_uid, ubuntu.pw_gid)
            Path(inside).mkdir(parents=True, exist_ok=True)  # the (empty) mount point on the machine
        home = self.data_dir / "home-ubuntu"
        if Path("/etc/skel").is_dir():
            sh(["cp", "-rT", "/etc/skel", str(home)])
        # ---- keys: the login key of `ubuntu` (client side) and the host key (server side)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{USER}@{self.name}", "-f", str(self.key_path)])
        hk = self.data_dir / "ssh" / "ssh_host_ed25519_key"
        if host_key:
            hk.write_text(host_key if host_key.endswith("\n") else host_key + "\n")
            hk.chmod(0o600)
            pub = sh(["ssh-keygen", "-y", "-f", str(hk)]).stdout.strip()
        else:
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{self.name}", "-f", str(hk)])
            pub = Path(str(hk) + ".pub").read_text().strip()
        self.host_public_key = " ".join(pub.split()[:2])
        st["host_public_key"] = self.host_public_key
        self.known_hosts_path.write_text(self.known_hosts_line() + "\n")
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(str(self.key_path) + ".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        sh(["chown", "-R", f"{ubuntu.pw_uid}:{ubuntu.pw_gid}", str(home)])
        self._save()
        # ---- network: netns + veth into the bridge
        sh(["ip", "netns", "add", self.netns])
        # eth0's MAC is derived from the IP: host IPs are reused quickly, and a neighbour (ARP) entry for the
        # previous owner's MAC would otherwise black-hole the new host for up to ~30 s
        mac = "02:6c:73:74:%02x:%02x" % (BRIDGE_NET.prefixlen, HOST_IP_BASE + self.index)
        sh(["ip", "neigh", "del", self.ip, "dev", BRIDGE], check=False)
        sh(["ip", "link", "add", st["veth"], "type", "veth", "peer", "name", "eth0", "address", mac,
            "netns", self.netns])
        sh(["ip", "link", "set", st["veth"], "master", BRIDGE, "up"])
        nsx = ["ip", "-n", self.netns]
        sh(nsx + ["addr", "add", f"{self.ip}/{BRIDGE_NET.prefixlen}", "dev", "eth0"])
        sh(nsx + ["link", "set", "eth0", "up"])
        sh(nsx + ["link", "set", "lo", "up"])
        st["netns_ino"] = _ns_inode(f"/run/netns/{self.netns}")
        # ---- mount namespace holder
        holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", "unshare", "--mount", "--uts",
             "--propagation", "private", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd="/")
        self._add_proc(holder.pid, "holder")
        my_mnt = _ns_inode("/proc/self/ns/mnt")
        wait_for(lambda: _ns_inode(f"/proc/{holder.pid}/ns/mnt") not in (None, my_mnt),
                 "the host's mount namespace", 20)
        st["mntns_ino"] = _ns_inode(f"/proc/{holder.pid}/ns/mnt")
        self._save()
        self._holder = holder.pid
        binds = []
        for inside, sub, _mode, _owner in PRIVATE_DIRS:
            src = run if sub is None else self.data_dir / sub
            binds.append(f"mount --bind {src} {inside}")
        # EC2-style hostname (ip-a-b-c-d) in the host's own UTS namespace, resolvable through its own /etc/hosts
        # (sudo warns on stderr when the hostname does not resolve)
        self.hostname = "ip-" + self.ip.replace(".", "-")
        hosts = self.data_dir / "etc-hosts"
        hosts.write_text(Path("/etc/hosts").read_text() + f"\n{self.ip}\t{self.hostname}\n")
        hosts.chmod(0o644)
        binds.append(f"mount --bind {hosts} /etc/hosts")
        # a power-off inside the host powers off the host, never the machine (see power.py)
        (run / power.HOST_FILE.name).write_text(json.dumps({
            "name": self.name, "data_dir": str(self.data_dir), "holder_pid": holder.pid,
            "netns_ino": st["netns_ino"], "mntns_ino": st["mntns_ino"]}))
        (run / Path(power.REAL_SYSTEMCTL).name).touch()
        binds.append(f"mount --bind /usr/bin/systemctl {power.REAL_SYSTEMCTL}")
        # The host's own copy: the checkout's may be under a path the host's private /tmp, /root, /home or /srv
        # hides (bound just above), so the bed runs from a clone in any folder.
        switch = self.data_dir / "power-switch.py"
        shutil.copyfile(Path(power.__file__).resolve(), switch)
        switch.chmod(0o755)
        binds.append(f"mount --bind {switch} /usr/bin/systemctl")
        binds.append(f"hostname {self.hostname}")
        sh(self._nsenter(net=False) + ["sh", "-euc", " && ".join(binds)])
        # ---- sshd
        self._write_sshd_config()
        self._start_sshd()
        # ---- dockerd
        if seed:
            clone_data_root(seed, self.data_dir / "var-lib-docker")
        self.start_docker()

    def _prepare_run(self) -> None:
        """The host's /run as a boot finds it (a tmpfs on a server: empty but for what early boot makes)."""
        run = self.run_dir / "run"
        run.mkdir(exist_ok=True)
        for sub, mode in (("sshd", 0o755), ("lock", 0o1777), ("user", 0o755), ("docker", 0o700)):
            (run / sub).mkdir(exist_ok=True)
            (run / sub).chmod(mode)
        if not (run / "shm").is_symlink():
            (run / "shm").symlink_to("/dev/shm")

    def _nsenter(self, net: bool = True, mnt: bool = True) -> list[str]:
        pid = self._holder_pid()
        cmd = ["nsenter"]
        if net:
            cmd.append(f"--net=/proc/{pid}/ns/net")
        if mnt:
            cmd.append(f"--mount=/proc/{pid}/ns/mnt")
            cmd.append(f"--uts=/proc/{pid}/ns/uts")
        # nothing started in the host (nor sudo, nor a container) can call reboot(2) on the shared kernel
        return cmd + ["--", "setpriv", "--bounding-set", "-sys_boot", "--"]

    def _holder_pid(self) -> int:
        for rec in self.state["procs"]:
            if rec["role"] == "holder" and proc_alive(rec):
                return rec["pid"]
        raise TestbedError(f"{self.name}: mount namespace holder is gone")

    def _start_logged(self, role: str, argv: list[str]) -> dict:
        logf = open(self.data_dir / "logs" / f"{role}.log", "ab")
        try:
            p = subprocess.Popen(self._nsenter() + argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                 start_new_session=True, cwd="/",
                                 env={"PATH": CLEAN_PATH, "HOME": "/root", "LANG": "C.UTF-8"})
        finally:
            logf.close()
        return self._add_proc(p.pid, role)

    def _start_sshd(self) -> None:
        self._start_logged("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.data_dir / "ssh/sshd_config")])
        wait_for(lambda: _tcp_open(self.ip, 22), f"sshd on {self.ip}:22", 30, log=self.data_dir / "logs/sshd.log")

    def _write_sshd_config(self) -> None:
        d = self.data_dir / "ssh"
        (d / "sshd_config").write_text(f"""# labstack test bed host {self.name}: an EC2-like sshd (key-only, user {USER})
Port 22
ListenAddress 0.0.0.0
HostKey {d}/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {USER}
# no PAM: pam_loginuid and friends fail in a namespace; the account has password '*' instead of locked '!'
UsePAM no
PrintMotd no
AcceptEnv LANG LC_*
# pulumi-command uploads files over SFTP
Subsystem sftp /usr/lib/openssh/sftp-server
# tests open many connections in a burst
MaxStartups 100:30:200
MaxSessions 100
LogLevel VERBOSE
""")

    def start_docker(self) -> None:
        bip, pools = self.docker_networks(self.index)
        argv = ["dockerd", "--data-root", "/var/lib/docker", "--exec-root", "/run/docker",
                "-H", "unix:///run/docker.sock", "--pidfile", "/run/docker.pid", "--group", "docker",
                "--storage-driver", "overlay2", "--bip", bip, "--cgroup-parent", self.state["cgroup_parent"],
                "--shutdown-timeout", "10"]
        for p in pools:
            argv += ["--default-address-pool", p]
        self.docker_sock.unlink(missing_ok=True)
        self._start_logged("dockerd", argv)
        wait_for(lambda: _docker_ping(self.docker_sock), f"dockerd of {self.name}", 90,
                 log=self.data_dir / "logs/dockerd.log")

    def stop_docker(self) -> None:
        for rec in [r for r in self.state["procs"] if r["role"] == "dockerd"]:
            kill_record(rec, signal.SIGTERM, wait=40)
            self.state["procs"].remove(rec)
        self._save()

    def restart_docker(self) -> None:
        """Stop and start this host's engine (containers with a restart policy come back, as on a server)."""
        self.stop_docker()
        self.start_docker()

    # ------------------------------------------------------------------------------------------- power
    def power_log(self) -> list[dict]:
        """What the host's power switch recorded (power.py): {"time", "state": "requested"|"off", "action":
        "poweroff"|"reboot", "command"}, oldest first."""
        log = self.data_dir / power.POWER_LOG
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def wait_powered_off(self, timeout: float) -> dict:
        """Wait until the host's last power request has powered it off; return that record."""
        wait_for(lambda: self.power_log() and self.power_log()[-1]["state"] == "off", f"{self.name} to power off",
                 timeout)
        for rec in self.state["procs"]:
            _reap(rec["pid"])   # sshd and dockerd are children of the process that started the host
        return self.power_log()[-1]

    def power_on(self) -> None:
        """Boot a powered-off host again, as starting a stopped EC2 instance does: same disks (its directories;
        /tmp and /run emptied), sshd and the engine start (containers with a restart policy come back)."""
        if any(proc_alive(r) for r in self.state["procs"] if r["role"] in ("sshd", "dockerd")):
            raise TestbedError(f"{self.name} is running: power it off first")
        self.state["procs"] = [r for r in self.state["procs"] if proc_alive(r)]
        self._save()
        # /tmp and /run start empty, as after a boot; the power switch's own files in /run stay
        for folder in (self.data_dir / "tmp", self.run_dir / "run"):
            for entry in folder.iterdir():
                if entry.name.startswith(".labstack-testbed"):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        self._prepare_run()
        self._start_sshd()
        self.start_docker()

    # ------------------------------------------------------------------------------------------ access
    def ssh_base(self) -> list[str]:
        """ssh argv (without the remote command) pinned to this host's key: StrictHostKeyChecking=yes with a
        known_hosts file that holds only that key."""
        return ["ssh", "-F", "/dev/null", "-i", str(self.key_path), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-p", str(self.port), f"{self.user}@{self.ip}"]

    def run(self, cmd: str, check: bool = True, timeout: float = 600, input: str | None = None,
            **kw) -> subprocess.CompletedProcess:
        """Run a shell command as `ubuntu` over real ssh; returns CompletedProcess (text stdout/stderr)."""
        p = subprocess.run(self.ssh_base() + ["--", cmd], capture_output=True, text=True, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL, **kw)
        if check and p.returncode != 0:
            raise TestbedError(f"{self.name}: `{cmd}` -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def put(self, local: str | Path, remote: str) -> None:
        """Copy a file to the host over SFTP (scp -s), as the ubuntu user."""
        base = self.ssh_base()
        opts = base[1:-3]  # drop 'ssh' and '-p', port, user@ip
        sh(["scp", "-s", "-q", *opts, "-P", str(self.port), str(local), f"{self.user}@{self.ip}:{remote}"])

    def docker(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """The docker CLI on the machine, pointed at this host's engine."""
        p = subprocess.run([DOCKER_CLI, "-H", self.docker_url, *args], capture_output=True, text=True,
                           timeout=timeout, env={"PATH": CLEAN_PATH, "HOME": str(self.run_dir)})
        if check and p.returncode != 0:
            raise TestbedError(f"docker {' '.join(args)} on {self.name} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def docker_client(self):
        import docker
        return docker.DockerClient(base_url=self.docker_url, timeout=300)

    def load_image(self, tar_or_name: str | Path) -> None:
        """Load a `docker save` tarball, or a stand-in image by its production name (e.g. "postgres:16")."""
        from . import images
        path = Path(tar_or_name)
        if str(tar_or_name) in images.RECIPES:
            path = images.ensure_image(str(tar_or_name))
        self.docker("load", "-q", "-i", str(path))

    def exec_in(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        """Run a command as root inside the host's namespaces, bypassing ssh (for test-bed internals)."""
        return sh(self._nsenter() + argv, check=check)

    def copy_in(self, files: list[Path], remote_dir: str) -> None:
        """Copy files of the machine into a folder of the host (made if missing) as root, modes kept: through a pipe,
        since the checkout they come from may be under a path the host hides (its /tmp, /root, /home, /srv)."""
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for path in files:
                tar.add(path, arcname=path.name)
        self.exec_in(["mkdir", "-p", remote_dir])
        sh(self._nsenter() + ["tar", "-x", "--no-same-owner", "-C", remote_dir], input=archive.getvalue(), text=False)

    def install_hooks(self) -> None:
        """The hooks where HostSetup copies them on a server: the whole folder (the scripts, the node agent's
        package, the templates)."""
        from components.layout import HOOKS_DIR, REMOTE_HOOKS

        self.copy_in(sorted(Path(HOOKS_DIR).iterdir()), REMOTE_HOOKS)

    def give_block_device(self, by_id_name: str, device: str) -> None:
        """Show `device` (a loop device) to this host only as /dev/disk/by-id/<by_id_name>, the name EC2's Nitro
        udev rules give an EBS volume, and give the host a private /etc/fstab. A tmpfs over /dev/disk and a bind over
        /etc/fstab exist only in the host's mount namespace and go with it; on the machine at most an empty
        /dev/disk mount point appears (the machine has no udev), and nothing is ever created inside it."""
        fstab = self.data_dir / "fstab"  # run_dir is hidden inside the host (its /run is its own)
        if not fstab.exists():
            fstab.write_bytes(Path("/etc/fstab").read_bytes() if Path("/etc/fstab").exists() else b"")
            Path("/dev/disk").mkdir(exist_ok=True)
            self.exec_in(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "labstack-testbed-disk", "/dev/disk"])
            self.exec_in(["mkdir", "/dev/disk/by-id"])
            self.exec_in(["mount", "--bind", str(fstab), "/etc/fstab"])
        self.exec_in(["ln", "-sfn", device, f"/dev/disk/by-id/{by_id_name}"])

    def hold_cpu_still(self) -> None:
        """Hosts share the machine's /proc/stat, so other tests' work shows as this host's CPU use: give the host a
        /proc/stat whose counters never move (an idle CPU), for tests of what a server does when it is idle."""
        still = self.data_dir / "proc-stat"
        still.write_text("cpu  1000 0 1000 100000 0 0 0 0 0 0\ncpu0 1000 0 1000 100000 0 0 0 0 0 0\n")
        self.exec_in(["mount", "--bind", str(still), "/proc/stat"])

    def forward_port(self, port: int, target_port: int | None = None) -> None:
        """Make 127.0.0.1:port inside the host reach 127.0.0.1:target_port on the machine (for the registry)."""
        fwd = Path(__file__).with_name("forward.py")
        p = subprocess.Popen([sys.executable, str(fwd), f"/proc/{self._holder_pid()}/ns/net", str(port),
                              str(target_port or port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=open(self.data_dir / "logs" / f"forward-{port}.log", "ab"),
                             start_new_session=True)
        self._add_proc(p.pid, f"forward-{port}")
        line = p.stdout.readline()  # the forwarder says "ready" once it listens inside the host
        p.stdout.close()
        if not line.startswith(b"ready"):
            raise TestbedError(f"{self.name}: port forwarder for {port} failed: {line!r}")

    def stop(self) -> None:
        """Stop everything of this host and remove its namespace, link, cgroups and directories."""
        if self._stopped:
            return
        self._stopped = True
        keep = os.environ.get("LABSTACK_TESTBED_LOGS")  # e.g. CI artifacts: sshd/dockerd logs per host
        if keep and (self.data_dir / "logs").is_dir():
            with contextlib.suppress(OSError):
                shutil.copytree(self.data_dir / "logs", Path(keep) / self.name, dirs_exist_ok=True)
        cleanup_state(self.state)


# ------------------------------------------------------------------------------------------------ cleanup
def cleanup_state(state: dict) -> list[str]:
    """Remove every trace of one host from its state record. Safe on partial/crashed hosts; idempotent.
    Returns notes about what was found (for leftovers reports)."""
    notes = []
    procs = state.get("procs", [])
    # engine first, gracefully, so it stops its containers; then everything else we recorded
    for role_first in ("dockerd",):
        for rec in procs:
            if rec["role"] == role_first and proc_alive(rec):
                notes.append(f"stopped {rec['role']} pid {rec['pid']}")
                kill_record(rec, signal.SIGTERM, wait=30)
    for rec in procs:
        if rec["role"] != "holder" and proc_alive(rec):
            notes.append(f"stopped {rec['role']} pid {rec['pid']}")
            kill_record(rec, signal.SIGTERM, wait=10)
    # anything else living in the host's namespaces (shims, containers, docker-proxy, ssh sessions) is ours too
    for _ in range(3):
        holders = {r["pid"] for r in procs if r["role"] == "holder"}
        stray = power.processes_in(state.get("netns_ino"), state.get("mntns_ino"), exclude={os.getpid(), *holders})
        if not stray:
            break
        notes.append(f"killed {len(stray)} process(es) left in the host's namespaces")
        for pid in stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        for pid in stray:
            _reap(pid)
    for rec in procs:
        if rec["role"] == "holder":
            kill_record(rec, signal.SIGKILL, wait=5)
    # cgroups that dockerd made under our cgroup parent
    cg = state.get("cgroup_parent")
    if cg:
        for ctl in Path("/sys/fs/cgroup").iterdir() if Path("/sys/fs/cgroup").is_dir() else []:
            top = ctl / cg
            if top.is_dir() and not top.is_symlink():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                with contextlib.suppress(OSError):
                    top.rmdir()
    veth = state.get("veth")
    if veth and sh(["ip", "link", "show", veth], check=False).returncode == 0:
        sh(["ip", "link", "del", veth], check=False)
    ns = state.get("netns")
    if ns and Path(f"/run/netns/{ns}").exists():
        sh(["ip", "netns", "del", ns], check=False)
    # never delete through a live mount (would reach into whatever is mounted there)
    mounts = Path("/proc/self/mountinfo").read_text()
    for key in ("data_dir", "run_dir"):
        d = state.get(key)
        if d and Path(d).exists():
            if f" {d}/" in mounts or f" {d} " in mounts:
                notes.append(f"left {d}: something is still mounted below it")
                continue
            shutil.rmtree(d, ignore_errors=True)
    return notes


def cleanup_leftovers(log=print) -> list[str]:
    """Clean hosts recorded by sessions that are gone (crashed, killed, interrupted). Hosts of live sessions
    (another pytest on this machine) are left alone."""
    notes = []
    with bed_lock():
        states = read_states()
    for st in states:
        owner = st.get("owner")
        if owner and proc_alive(owner) and owner["pid"] != os.getpid():
            continue
        if owner and owner["pid"] == os.getpid():
            continue
        n = cleanup_state(st)
        notes.append(f"host {st['name']}: " + ("; ".join(n) or "removed records"))
    # data directories without a state record (a cleanup interrupted between its two rmtree calls); checked
    # under the lock because a starting host writes its state before creating its directories
    with bed_lock():
        live = {s["name"] for s in read_states()}
        mounts = Path("/proc/self/mountinfo").read_text()
        for d in DATA_ROOT.glob("*") if DATA_ROOT.is_dir() else []:
            if d.is_dir() and d.name not in live and f" {d}/" not in mounts and f" {d} " not in mounts:
                shutil.rmtree(d, ignore_errors=True)
                notes.append(f"directory {d}")
    remove_bridge_if_unused()
    for n in notes:
        log(f"testbed: cleaned leftover {n}")
    return notes


def traces_of(state: dict) -> list[str]:
    """What is still on the machine from one host (empty list = nothing): used by the teardown self-test."""
    found = []
    for rec in state.get("procs", []):
        if proc_alive(rec):
            found.append(f"process {rec['role']} pid {rec['pid']} still running")
    stray = power.processes_in(state.get("netns_ino"), state.get("mntns_ino"), exclude={os.getpid()}) if Path(
        f"/run/netns/{state.get('netns')}").exists() else []
    if stray:
        found.append(f"processes in the host's namespaces: {stray}")
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if state["data_dir"].encode() in (d / "cmdline").read_bytes():
                    found.append(f"process {d.name} refers to {state['data_dir']}")
    if Path(f"/run/netns/{state['netns']}").exists():
        found.append(f"netns {state['netns']}")
    if sh(["ip", "link", "show", state["veth"]], check=False).returncode == 0:
        found.append(f"link {state['veth']}")
    mounts = Path("/proc/self/mountinfo").read_text()
    for needle in (state["netns"], state["data_dir"], state["run_dir"]):
        if needle in mounts:
            found.append(f"mount mentioning {needle}")
    for key in ("data_dir", "run_dir"):
        if Path(state[key]).exists():
            found.append(f"directory {state[key]}")
    cg = state.get("cgroup_parent")
    if cg and Path("/sys/fs/cgroup").is_dir():
        for ctl in Path("/sys/fs/cgroup").iterdir():
            if (ctl / cg).is_dir():
                found.append(f"cgroup {ctl / cg}")
    return found


# ------------------------------------------------------------------------------------------- engine seeds
def clone_data_root(src: Path, dst: Path) -> None:
    """Clone a stopped engine's data root in about a second: image layer contents (overlay2/<id>/diff/**) are
    hard-linked, because overlayfs never writes to lower layers and removing an image only unlinks; every other
    file (bolt databases written in place, json state) becomes a private copy."""
    sh(["cp", "-al", f"{src}/.", f"{dst}/"])
    for dirpath, dirnames, filenames in os.walk(dst):
        rel = os.path.relpath(dirpath, dst).split(os.sep)
        if len(rel) == 2 and rel[0] == "overlay2" and "diff" in dirnames:
            dirnames.remove("diff")
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            if stat_is_reg(st.st_mode) and st.st_nlink > 1:
                tmp = p + ".lstb-copy"
                shutil.copy2(p, tmp)
                os.chown(tmp, st.st_uid, st.st_gid)
                os.replace(tmp, p)


def stat_is_reg(mode: int) -> bool:
    import stat as _stat
    return _stat.S_ISREG(mode)


def ensure_engine_seed(image_names, log=print) -> Path | None:
    """A stopped engine data root with the given stand-in images loaded, cached per image set and recipe,
    built once (on a throw-away host) and reused by every host, test and run."""
    from . import images
    names = tuple(sorted(set(image_names)))
    if not names:
        return None
    paths = images.ensure_images(names, log)
    import hashlib
    dockerd_version = sh(["dockerd", "--version"]).stdout.strip()
    pins = images.pinned_references(names)  # a new pin makes a new seed
    key = hashlib.sha256(repr((names, [str(paths[n]) for n in names], dockerd_version, "seed-v1",
                               sorted(pins.items()))).encode())
    d = images.CACHE_DIR / "engines" / key.hexdigest()[:16]
    if (d / "done").exists():
        return d / "docker"
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (d / "done").exists():
            return d / "docker"
        t = time.monotonic()
        log(f"testbed: preparing an engine with {', '.join(names)} (once; cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        h = TestbedHost.start(f"seed{os.getpid() % 100000}", log=log)
        try:
            for n in names:
                h.load_image(paths[n])
            h.stop_docker()
            images.register_pins(h.data_dir / "var-lib-docker", names)  # components/render/images.json's pins
            # the data root moves to the cache before the host's directories are removed
            os.rename(h.data_dir / "var-lib-docker", d / "docker")
            # network state (docker0's bip) belongs to the seed host's index; each host's engine makes its own
            shutil.rmtree(d / "docker" / "network", ignore_errors=True)
        finally:
            h.stop()
        (d / "images.txt").write_text("".join(f"{paths[n]}\n" for n in names))
        (d / "done").write_text(f"{time.monotonic() - t:.0f}s\n")
        return d / "docker"
