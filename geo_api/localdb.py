"""The project-local PostGIS cluster: its own data directory and port.

PostgreSQL refuses to run as root, so when the CLI runs as root (as CI does) the
server is run as the ``postgres`` system user via ``runuser``. If that user cannot
reach the project directory (e.g. a clone under ``/root``), the data directory moves to
``/var/lib/border-roads-tracker/<hash>``, owned by ``postgres``.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from geo_api.settings import DatabaseSettings, get_settings

PG_MAJOR_DEFAULT = "15"


class LocalDbError(RuntimeError):
    """A problem the user must fix by hand; the message says how."""


def _server_bin_dirs() -> list[Path]:
    base = Path("/usr/lib/postgresql")
    if not base.is_dir():
        return []
    dirs = [d / "bin" for d in base.iterdir() if (d / "bin" / "initdb").exists()]
    return sorted(dirs, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def pg_bin_dir() -> Path:
    dirs = _server_bin_dirs()
    if not dirs:
        raise LocalDbError("PostgreSQL server binaries not found; run `tracker db ensure-postgis`.")
    return dirs[-1]


def _pg_major() -> str:
    dirs = _server_bin_dirs()
    return dirs[-1].parent.name if dirs else PG_MAJOR_DEFAULT


def postgis_missing_packages() -> list[str]:
    """Debian packages still needed for PostgreSQL + PostGIS + pgRouting."""
    major = _pg_major()
    ext = Path(f"/usr/share/postgresql/{major}/extension")
    missing = []
    if not _server_bin_dirs():
        missing.append(f"postgresql-{major}")
    if not any(ext.glob("postgis--*.sql")):
        missing.append(f"postgresql-{major}-postgis-3")
    if not any(ext.glob("pgrouting--*.sql")):
        missing.append(f"postgresql-{major}-pgrouting")
    return missing


def browser_missing_packages() -> list[str]:
    """Debian packages still needed for the browser tests (headless Chromium + driver)."""
    wanted = {"chromium": "/usr/bin/chromium", "chromium-driver": "/usr/bin/chromedriver"}
    return [pkg for pkg, path in wanted.items() if not Path(path).exists()]


def ensure_postgis(echo=print) -> None:
    """Install PostgreSQL/PostGIS/pgRouting from apt when missing, as root or via sudo."""
    ensure_apt_packages(postgis_missing_packages(), "PostGIS", postgis_missing_packages, echo,
                        hint="or point DATABASE_URL at an existing PostGIS database.")


def ensure_browser(echo=print) -> None:
    """Install Debian's Chromium and ChromeDriver when missing, as root or via sudo."""
    ensure_apt_packages(browser_missing_packages(), "Chromium", browser_missing_packages, echo)


def ensure_apt_packages(missing: list[str], what: str, recheck, echo=print, hint: str = "") -> None:
    if not missing:
        return
    apt = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    command = "sudo apt-get update && sudo " + " ".join(apt)
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(
        ["sudo", "-n", "true"], capture_output=True
    ).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        raise LocalDbError(
            f"{what} is not installed and this user cannot install it. Run:\n  {command}\n{hint}"
        )
    if not shutil.which("apt-get"):
        raise LocalDbError(
            f"{what} is not installed and apt-get is not available; install {' '.join(missing)} "
            f"with your system's package manager. {hint}"
        )
    echo(f"Installing {' '.join(missing)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([*prefix, "apt-get", "update", "-q"], check=True, env=env)
        subprocess.run([*prefix, *apt, "-q"], check=True, env=env)
    except subprocess.CalledProcessError as exc:
        raise LocalDbError(f"`{' '.join(exc.cmd)}` failed (exit {exc.returncode}); "
                           f"fix the cause above, or run:\n  {command}") from None
    still = recheck()
    if still:
        raise LocalDbError(f"Installation finished but these are still missing: {' '.join(still)}")


@dataclass
class Cluster:
    settings: DatabaseSettings

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def _run_as(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if self.as_root else []

    @property
    def data_dir(self) -> Path:
        wanted = self.settings.pg_dir.resolve()
        if not self.as_root or self._postgres_can_reach(wanted.parent):
            return wanted
        digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
        return Path("/var/lib/border-roads-tracker") / digest / "pgdata"

    @staticmethod
    def _postgres_can_reach(path: Path) -> bool:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise LocalDbError("running as root needs the `postgres` system user (apt package postgresql)")
        # postgres needs only to traverse the parent: root creates and chowns the data dir.
        probe = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(path)], capture_output=True
        )
        return probe.returncode == 0

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _pg(self, tool: str, *args: str, check: bool = True, capture: bool = True):
        cmd = [*self._run_as(), str(pg_bin_dir() / tool), *args]
        result = subprocess.run(cmd, capture_output=capture, text=True)
        if check and result.returncode != 0:
            raise LocalDbError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised():
            return
        ddir = self.data_dir
        ddir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(ddir, "postgres", "postgres")
            os.chmod(ddir, 0o700)
        self._pg(
            "initdb", "-D", str(ddir), "-U", self.settings.pg_user, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._pg("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        self.init()
        if self.running():
            return
        opts = (
            f"-p {self.settings.pg_port} -c listen_addresses=127.0.0.1 "
            "-c unix_socket_directories='' -c max_connections=200 -c jit=off"
        )
        result = self._pg(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(self.log_file), "-o", opts, check=False,
        )
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise LocalDbError(f"could not start PostgreSQL on port {self.settings.pg_port}:\n{tail}")
        self.ensure_database(self.settings.pg_database)

    def stop(self) -> None:
        if self.running():
            self._pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.settings.pg_user}@127.0.0.1:{self.settings.pg_port}/{database}"

    def ensure_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.settings.pg_port, user=self.settings.pg_user,
            dbname="postgres", autocommit=True,
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')


def local_cluster(settings: DatabaseSettings | None = None) -> Cluster:
    return Cluster(settings or get_settings().database)


def ensure_database_available(echo=print) -> str:
    """Return the database URL, starting the local cluster unless DATABASE_URL is set."""
    settings = get_settings().database
    if settings.database_url:
        return settings.resolved_database_url()
    ensure_postgis(echo)
    cluster = local_cluster(settings)
    cluster.start()
    return settings.resolved_database_url()

