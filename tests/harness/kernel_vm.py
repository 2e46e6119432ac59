"""A test container's files booted as a virtual machine under QEMU's emulation (TCG: KVM inside
a cloud VM fails to start or hangs, as on this project's machines), for what only a kernel of
one's own can judge: a container shares this machine's kernel, whose state (the audit rules)
tests must not change. Docker's export of the container becomes the VM's initramfs; the kernel
is the one Debian's kernel package of the container's release ships; a script of the test's
runs as init and powers the VM off."""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from .containers import Machine
from .judge_packages import cached, fetched

KERNEL_PACKAGE = "linux-image-amd64"  # Debian's metapackage: it depends on the release's kernel
INIT = "judge-init"  # the script's path in the VM, at its root
UNNEEDED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache", "var/lib/apt/lists")


def can_boot() -> str | None:
    """Why no VM can boot here, or None."""
    if platform.machine() != "x86_64":
        return f"the VM judge boots x86_64 kernels; this machine is {platform.machine()}"
    missing = [tool for tool in ("qemu-system-x86_64", "bsdtar", "dpkg-deb") if not shutil.which(tool)]
    return f"missing {', '.join(missing)} (make judges installs them)" if missing else None


def kernel(machine: Machine) -> Path:
    """The kernel image of ``machine``'s release, downloaded once into build/judges. The
    container's apt names the package file; this machine fetches it (the container may not
    resolve names once its firewall is up)."""
    package = machine.check(
        f"apt-cache depends {KERNEL_PACKAGE} | awk '/Depends: linux-image-/ {{ print $2; exit }}'"
    ).strip()
    deb = fetched(machine.check(f"apt-get download --print-uris {package}"))

    def extract(path: Path) -> None:
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run(
                f"dpkg-deb --fsys-tarfile {deb} | tar -x -C {folder} --wildcards './boot/vmlinuz-*'",
                shell=True,
                check=True,
            )
            shutil.move(next(Path(folder, "boot").glob("vmlinuz-*")), path)

    return cached(deb.name.removesuffix(".deb") + ".vmlinuz", extract)


def boot(machine: Machine, init: str, files: dict[str, str], timeout: float = 900) -> str:
    """Boot ``machine``'s files as they are now, with ``files`` (path in the VM: text) added and
    ``init`` (a shell script) as the first process; what the VM's console printed."""
    vmlinuz = kernel(machine)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        extra = Path(folder, "extra")
        (extra / "dev").mkdir(parents=True)
        # The kernel opens it for init's input and output before running it.
        os.mknod(extra / "dev" / "console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
        added = ["dev", "dev/console"]
        for path, text in {INIT: init, **files}.items():
            target = extra / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755 if path == INIT else 0o644)
            # The kernel makes no folder an archive does not list before its files.
            names = Path(path.lstrip("/")).parts
            added += ["/".join(names[: depth + 1]) for depth in range(len(names))]
        initrd = Path(folder, "initrd.cpio")
        # Entries named twice (a folder) take the later one. Documentation and apt's caches
        # are left out: the VM unpacks the archive into its memory, emulated.
        skipped = " ".join(f"--exclude {path}" for path in UNNEEDED)
        subprocess.run(
            f"docker export {machine.container.id} | bsdtar --format newc {skipped} -cf {initrd} @- -C {extra} "
            + " ".join(added),
            shell=True,
            check=True,
        )
        memory_mib = 1024 + 2 * initrd.stat().st_size // 2**20  # the archive, unpacked beside it
        console = subprocess.run(
            [
                "qemu-system-x86_64",
                *("-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", str(memory_mib)),
                *("-display none -monitor none -serial stdio -no-reboot".split()),
                *("-kernel", str(vmlinuz), "-initrd", str(initrd)),
                *("-append", f"console=ttyS0 rdinit=/{INIT} audit=1 panic=-1 quiet"),
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    if console.returncode != 0:
        raise AssertionError(f"qemu failed ({console.returncode}): {console.stderr[-2000:]}")
    return console.stdout.replace("\r\n", "\n")
