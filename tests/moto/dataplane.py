"""Gives moto's RDS a data plane: real PostgreSQL 15 and MariaDB servers behind the databases
the tests opt in, so that what the product reads inside a database (its data check, a digest
of every user table computed by the server) can be tested end to end (DOMAIN.md §17).

Off unless `RDS_HANDOFF_DATA_DIR` is set (tests/src/emulator.rs sets it per moto server to
`/tmp/rh-data-<port>`): without it, importing this module changes nothing. With it:

1. Opt-in. A DB instance (CreateDBInstance) or an Aurora cluster (CreateDBCluster) created
   with the tag `emulator:data-plane` = `true` gets a server of its own on a loopback port:
   engines `postgres` and `aurora-postgresql` a PostgreSQL 15 server, `mysql`, `mariadb` and
   `aurora-mysql` a MariaDB server; any other engine none. A cluster's member instances get
   none: the cluster's server is what its endpoint reaches. The tag is read at creation only.
   The server is ready before the API call answers. The master user and password are the
   ones the call gave (MasterUsername, MasterUserPassword; with ManageMasterUserPassword,
   the password of the secret moto made). As on RDS the master user is no superuser but can
   read every user table: on PostgreSQL a role with LOGIN CREATEDB CREATEROLE, member of
   `rds_superuser` (which holds `pg_read_all_data`, `pg_signal_backend`, `pg_monitor`); on
   MariaDB the privileges RDS documents for MySQL's master user, on `*.*` WITH GRANT OPTION
   (no SUPER, FILE or SHUTDOWN). DBName, if given, is created (owned by the master on
   PostgreSQL). As on RDS, the server holds objects of its own: on PostgreSQL a database
   `rdsadmin` no one else may connect to, on MariaDB the table `mysql.rds_heartbeat2`, which
   the emulator writes at every start (a restore's differs from its source's). The harness
   alone uses an internal admin over the unix socket: the PostgreSQL bootstrap superuser
   `rdsadmin` (trust on the socket only; TCP takes scram-sha-256 from 127.0.0.1 only,
   passwords stored as scram-sha-256), MariaDB's `root` (unix_socket authentication; the
   OS user running the server when not root). As root, PostgreSQL runs as the OS user
   `postgres` and MariaDB as `mysql`, their files owned by them; otherwise as the current user.
2. TLS. Each server offers TLS (and, as RDS, plaintext too) with a certificate from a CA made
   once per moto server, `<data dir>/ca.pem`, naming in its subjectAltName exactly the DNS
   name DescribeDBInstances / DescribeDBClusters report as the endpoint address (an
   instance's `Endpoint.Address`, a cluster's `Endpoint`), and no IP address: a client that
   connects to 127.0.0.1:<port>, as through an SSM tunnel, verifies it against the RDS
   endpoint name. No client certificate is asked for. The address and port stay moto's (the
   address resolves nowhere, and a restore keeps its snapshot's port, as on AWS); the server
   listens on a free loopback port of its own, which only the registry names: tests reach it
   as an admin reaches RDS, through a tunnel.
3. Registry. `<data dir>/dbs/<account>/<region>/<db or cluster id>.json` tells the harness
   where each server is: {"engine": "postgres"|"mariadb", "port", "address", "socket_dir"
   (PostgreSQL) or "socket" (MariaDB), "admin_user", "data_dir", "master_user", "database",
   "kind": "instance"|"cluster", "id", "account", "region", "rds_engine", "ca", "pid"}.
   Written atomically (a temporary file renamed), rewritten on a restore or rename, removed
   on delete. Unix sockets live in a short directory, `$RDS_HANDOFF_SOCKET_DIR` or
   `/tmp/rh-<moto port>` (a socket path is limited to 107 bytes).
4. Snapshots hold data. A manual snapshot of a database with a server captures its data at
   the moment of CreateDBSnapshot / CreateDBClusterSnapshot, of StopDBInstance with
   DBSnapshotIdentifier and of a final snapshot on delete (automated snapshots hold none:
   moto takes its one at creation, before the server exists): PostgreSQL with
   `pg_basebackup` (consistent, the same bytes), MariaDB with `mariadb-dump --all-databases
   --single-transaction --routines --events` (users and their password hashes travel with
   the `mysql` database; restored rows are the same, not the files). The data is stored under
   `<data dir>/snapshots/<account>/<region>/<snapshot|cluster-snapshot>/<snapshot id>`, the
   parts of the snapshot's ARN. CopyDBSnapshot and CopyDBClusterSnapshot carry it to the copy
   (also across accounts, as shim.py resolves them; hard links: snapshot data never changes).
   RestoreDBInstanceFromDBSnapshot and RestoreDBClusterFromSnapshot start a new server from
   it in the restoring account, with a port and a certificate of its own; the master password
   is the one in the data, as on AWS. A write made after the snapshot is therefore not in the
   restore. RestoreDBInstanceToPointInTime / RestoreDBClusterToPointInTime take the source's
   data as it is at the call (the latest restorable time). A snapshot of a database with no
   server, or restored, holds no data and restores to a database with none. DeleteDBSnapshot
   and DeleteDBClusterSnapshot remove the data.
5. Master password. ModifyDBInstance / ModifyDBCluster with MasterUserPassword change the
   master user's password in the server (ALTER ROLE / ALTER USER, sent over the admin socket
   on standard input: never a process argument; MariaDB gets the password's hash only);
   with ManageMasterUserPassword the password becomes the one in the secret moto made.
   A rename (NewDBInstanceIdentifier, NewDBClusterIdentifier) re-issues the certificate for
   the new address and moves the registry entry.
6. Lifetime. DeleteDBInstance and DeleteDBCluster stop the server (after any final snapshot)
   and remove its files. StopDBInstance, StartDBInstance, StopDBCluster and StartDBCluster
   leave the server running. moto lets a cluster be created again under a name in use (AWS
   refuses); the new one's server then replaces the old. Servers are started by this process
   directly (no pg_ctl or mysqld_safe: nothing daemonizes), from one long-lived thread, with
   a parent-death signal, and `stop_all()` (server.py calls it before exiting) stops them
   (PostgreSQL by an immediate shutdown, which frees its shared memory); tests/src/emulator.rs
   also kills moto's whole process group.
7. Speed. A template data directory per engine version is made once per machine (under a
   file lock, in `$RDS_HANDOFF_TEMPLATES`, default `<data dir>/../dataplane-templates`) and
   copied; servers run with fsync off and small buffers.

A failure of the data plane answers the API call with `DataPlaneFailure` and the reason
(the database or snapshot is then not kept). Missing binaries are named with the package
to install: tests/src/dataplane.rs `engines_ready` installs MariaDB as root before a test
needs it; moto's server never runs apt-get.
"""

import concurrent.futures
import ctypes
import datetime
import fcntl
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

from moto.rds.exceptions import RDSClientError
from moto.rds.models import RDSBackend
from moto.rds.responses import RDSResponse

DATA_DIR = os.environ.get("RDS_HANDOFF_DATA_DIR") or None
TAG = "emulator:data-plane"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_ADMIN = "rdsadmin"
# Bump when the templates' contents change: older templates are then made again.
TEMPLATE_REVISION = "1"
READY_TIMEOUT = 60.0

# The privileges RDS gives MySQL's master user (USER_WorkingWithAccounts: "Master user
# account privileges"), in MariaDB's words.
MARIADB_MASTER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
    "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
    "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, "
    "EVENT, TRIGGER"
)


def flavor_of(engine):
    """The server an RDS engine gets: "postgres", "mariadb" or None."""
    engine = str(engine or "").lower()
    if engine in ("postgres", "aurora-postgresql"):
        return "postgres"
    if engine in ("mysql", "mariadb", "aurora-mysql", "aurora"):
        return "mariadb"
    return None


class DataPlaneFailure(RDSClientError):
    def __init__(self, message):
        super().__init__("DataPlaneFailure", message)


# ---------------------------------------------------------------------------------------
# Processes: started from one long-lived thread, dying with this process.

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child after the switch of user (a change of credentials clears it).
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# A parent-death signal fires when the *thread* that forked dies; moto answers each request
# on a thread of its own, so servers are forked by this one, which lives as long as moto.
_launcher = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataplane")


def _popen(argv, **kwargs):
    return _launcher.submit(
        subprocess.Popen, argv, preexec_fn=_die_with_parent, **kwargs
    ).result()


def _os_user(flavor):
    """Popen keywords and (uid, gid) to run an engine's programs as its OS user."""
    if os.geteuid() != 0:
        return {}, (os.getuid(), os.getgid())
    name = "postgres" if flavor == "postgres" else "mysql"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise DataPlaneFailure(
            f"the OS user `{name}` is missing (the {flavor} server package makes it)"
        )
    return (
        {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []},
        (entry.pw_uid, entry.pw_gid),
    )


def _env():
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent",
        "PGCONNECT_TIMEOUT": "10",
    }


def _run(argv, what, input=None, stdout=None, **kwargs):
    """Runs a helper to its end; DataPlaneFailure with its output if it fails."""
    out = subprocess.run(
        argv,
        input=input,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True if stdout is None else None,
        env=_env(),
        cwd="/",
        **kwargs,
    )
    if out.returncode != 0:
        err = out.stderr if isinstance(out.stderr, str) else out.stderr.decode(errors="replace")
        txt = out.stdout if isinstance(out.stdout, str) else ""
        raise DataPlaneFailure(
            f"{what}: {argv[0]} exited {out.returncode}: {err.strip()} {txt.strip()}"
        )
    return out.stdout


def _mkdir(path, owner=None, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)


def _rmtree(path):
    if path and os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_atomically(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temp, "w") as f:
        f.write(text)
    os.chmod(temp, mode)
    os.replace(temp, path)


def _log_tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# Binaries and templates.


def _mariadb_server_binary():
    for name in ("mariadbd", "mysqld"):
        for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
            path = os.path.join(d, name)
            if os.access(path, os.X_OK):
                return path
    found = shutil.which("mariadbd") or shutil.which("mysqld")
    if found:
        return found
    raise DataPlaneFailure(
        "MariaDB server binaries not found (mariadbd): apt-get install -y "
        "--no-install-recommends mariadb-server mariadb-client (tests/src/dataplane.rs "
        "engines_ready does it when run as root)"
    )


def _mariadb_tool(*names):
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise DataPlaneFailure(
        f"MariaDB client program {names[0]} not found: apt-get install -y "
        "--no-install-recommends mariadb-server mariadb-client"
    )


def _pg_tool(name):
    path = os.path.join(PG_BIN, name)
    if not os.access(path, os.X_OK):
        raise DataPlaneFailure(
            "PostgreSQL 15 server binaries not found: apt-get install postgresql-15"
        )
    return path


def _templates_dir():
    return os.environ.get("RDS_HANDOFF_TEMPLATES") or os.path.join(
        os.path.dirname(os.path.abspath(DATA_DIR)), "dataplane-templates"
    )


_version_cache = {}


def _version(argv):
    key = tuple(argv)
    if key not in _version_cache:
        _version_cache[key] = _run(argv, "engine version").strip()
    return _version_cache[key]


def _template(flavor):
    """The template data directory of an engine, made once per machine and engine version."""
    if flavor == "postgres":
        version = _version([_pg_tool("postgres"), "--version"])
    else:
        version = _version([_mariadb_server_binary(), "--version"])
    digest = hashlib.sha256(f"{version} {TEMPLATE_REVISION} {os.geteuid()}".encode()).hexdigest()
    root = _templates_dir()
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"{flavor}-{digest[:16]}")
    if os.path.isdir(final):
        return final
    with open(os.path.join(root, f"{flavor}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(final):
            return final
        building = f"{final}.building-{os.getpid()}"
        _rmtree(building)
        os.makedirs(building)
        try:
            if flavor == "postgres":
                _make_pg_template(building)
            else:
                _make_mariadb_template(building)
            os.rename(building, final)
        except BaseException:
            _rmtree(building)
            raise
    return final


def _make_pg_template(root):
    popen_user, owner = _os_user("postgres")
    data = os.path.join(root, "data")
    _mkdir(data, owner, 0o700)
    _run(
        [
            _pg_tool("initdb"), "-D", data, "-U", PG_ADMIN, "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            "--wal-segsize=1",
        ],
        "initdb",
        **popen_user,
    )
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write(
            "# rds-handoff emulator: the harness's admin over the socket, everyone else\n"
            "# with a password from 127.0.0.1 only (TLS or not, as RDS by default).\n"
            f"local   all          {PG_ADMIN}  trust\n"
            f"local   replication  {PG_ADMIN}  trust\n"
            "host    all          all       127.0.0.1/32  scram-sha-256\n"
        )
    if owner is not None and os.geteuid() == 0:
        os.chown(os.path.join(data, "pg_hba.conf"), *owner)
    sockets = os.path.join(root, "s")
    _mkdir(sockets, owner, 0o700)
    port = _free_port()
    log = os.path.join(root, "template.log")
    with open(log, "w") as log_file:
        proc = _popen(
            [_pg_tool("postgres"), "-D", data, "-p", str(port), "-k", sockets,
             *_pg_settings(), "-c", "listen_addresses="],
            stdout=subprocess.DEVNULL, stderr=log_file, env=_env(), cwd="/", **popen_user,
        )
    try:
        _wait_pg_ready(proc, data, log)
        _psql_at(
            sockets, port, "postgres",
            "CREATE DATABASE rdsadmin;\n"
            "REVOKE CONNECT ON DATABASE rdsadmin FROM PUBLIC;\n"
            "CREATE ROLE rds_superuser NOLOGIN;\n"
            "GRANT pg_read_all_data, pg_signal_backend, pg_monitor TO rds_superuser;\n",
        )
    finally:
        _stop_proc(proc, graceful=signal.SIGINT)
    _rmtree(sockets)
    os.remove(log)


def _make_mariadb_template(root):
    popen_user, owner = _os_user("mariadb")
    data = os.path.join(root, "data")
    argv = [
        _mariadb_tool("mariadb-install-db", "mysql_install_db"), "--no-defaults",
        f"--datadir={data}", "--auth-root-authentication-method=socket", "--skip-test-db",
        "--skip-name-resolve", *_mariadb_storage_settings(),
    ]
    if os.geteuid() == 0:
        argv.append("--user=mysql")
    _run(argv, "mariadb-install-db")
    if os.geteuid() == 0:
        _run(["chown", "-R", f"{owner[0]}:{owner[1]}", data], "chown template")


# ---------------------------------------------------------------------------------------
# Certificates.

_ca_lock = threading.Lock()


def _ca():
    """(certificate, key) of this moto server's CA, made on first use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    with _ca_lock:
        cert_path = os.path.join(DATA_DIR, "ca.pem")
        key_path = os.path.join(DATA_DIR, "ca.key")
        if os.path.exists(cert_path) and os.path.exists(key_path):
            with open(cert_path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
            return cert, key
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rds-handoff emulator"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME,
                    f"rds-handoff emulator CA {os.environ.get('MOTO_PORT', '')}".strip(),
                ),
            ]
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_atomically(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            0o600,
        )
        _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
        return cert, key


def _issue(address, tls_dir, owner):
    """A server certificate for `address` (subjectAltName: that DNS name only) in tls_dir."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert, ca_key = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        # A CN holds 64 characters at most; a cluster's endpoint is longer. The name is checked
        # against the subjectAltName, as TLS clients do.
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(address)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _mkdir(tls_dir, owner, 0o700)
    paths = {
        "server.crt": (cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644),
        "server.key": (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            0o600,
        ),
        "ca.pem": (ca_cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644),
    }
    for name, (text, mode) in paths.items():
        path = os.path.join(tls_dir, name)
        _write_atomically(path, text, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(path, *owner)


# ---------------------------------------------------------------------------------------
# PostgreSQL.


def _pg_settings():
    return [
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "shared_buffers=16MB",
        "-c", "max_connections=40",
        "-c", "max_wal_senders=4",
        "-c", "wal_level=replica",
        "-c", "min_wal_size=4MB",
        "-c", "max_wal_size=64MB",
        "-c", "autovacuum=off",
        "-c", "dynamic_shared_memory_type=mmap",
        "-c", "huge_pages=off",
        "-c", "password_encryption=scram-sha-256",
        # Never write a failing statement (it may carry a password) to the log.
        "-c", "log_min_error_statement=panic",
        "-c", "logging_collector=off",
    ]


def _wait_pg_ready(proc, data, log):
    pidfile = os.path.join(data, "postmaster.pid")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DataPlaneFailure(f"postgres exited ({proc.returncode}):\n{_log_tail(log)}")
        try:
            with open(pidfile) as f:
                lines = f.read().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise DataPlaneFailure(f"postgres not ready within {READY_TIMEOUT:.0f} s:\n{_log_tail(log)}")


def _psql_at(socket_dir, port, database, sql):
    return _run(
        [
            _pg_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", socket_dir, "-p", str(port), "-U", PG_ADMIN, "-d", database,
        ],
        "psql",
        input=sql,
    )


def _pg_ident(name):
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(text):
    """A dollar-quoted literal whose tag the text does not contain."""
    while True:
        tag = "$p" + secrets.token_hex(6) + "$"
        if tag not in text:
            return f"{tag}{text}{tag}"


# ---------------------------------------------------------------------------------------
# MariaDB.


def _mariadb_storage_settings():
    return [
        "--innodb-log-file-size=8M",
        "--innodb-buffer-pool-size=16M",
    ]


def _mariadb_settings():
    return [
        *_mariadb_storage_settings(),
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
        "--debug-no-sync",  # no fsync anywhere (Aria's mysql.* tables sync on create)
        "--innodb-use-native-aio=0",
        "--performance-schema=OFF",
        "--skip-name-resolve",
        "--max-connections=40",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--skip-log-bin",
        "--symbolic-links=0",
        "--log-warnings=1",
        "--open-files-limit=4096",
        "--aria-pagecache-buffer-size=8M",
        "--key-buffer-size=1M",
    ]


def _wait_mariadb_ready(proc, sock, log):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DataPlaneFailure(f"mariadbd exited ({proc.returncode}):\n{_log_tail(log)}")
        if os.path.exists(sock):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(sock)
                    if s.recv(4):  # the server's greeting
                        return
            except OSError:
                pass
        time.sleep(0.02)
    raise DataPlaneFailure(f"mariadbd not ready within {READY_TIMEOUT:.0f} s:\n{_log_tail(log)}")


def _mariadb_client(server, sql=None, database=None, stdin=None):
    argv = [
        _mariadb_tool("mariadb", "mysql"), "--no-defaults", "--default-character-set=utf8mb4",
        "-N", "-B",
        f"--socket={server.socket}", "-u", server.admin_user,
    ]
    if database:
        argv.append(database)
    if stdin is not None:
        out = subprocess.run(
            argv, stdin=stdin, capture_output=True, text=True, env=_env(), cwd="/"
        )
        if out.returncode != 0:
            raise DataPlaneFailure(f"mariadb exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout
    return _run(argv, "mariadb", input=sql)


def _my_literal(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def _my_native_hash(password):
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _heartbeat_sql():
    return (
        "CREATE TABLE IF NOT EXISTS mysql.rds_heartbeat2 "
        "(id INT NOT NULL PRIMARY KEY, value BIGINT) ENGINE=InnoDB;\n"
        "REPLACE INTO mysql.rds_heartbeat2 VALUES (1, FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000000));\n"
    )


# ---------------------------------------------------------------------------------------
# Servers.


class Server:
    def __init__(self, key, flavor, rds_engine):
        self.account, self.region, self.kind, self.id = key
        self.key = key
        self.flavor = flavor
        self.rds_engine = rds_engine
        self.port = None
        self.address = None
        self.dir = None
        self.data = None
        self.socket_dir = None
        self.socket = None
        self.proc = None
        self.owner = None
        self.admin_user = None
        self.master_user = None
        self.database = None

    @property
    def log(self):
        return os.path.join(self.dir, "server.log")

    def registry_path(self):
        return _registry_path(self.account, self.region, self.id)

    def record(self):
        entry = {
            "engine": self.flavor,
            "port": self.port,
            "address": self.address,
            "admin_user": self.admin_user,
            "data_dir": self.data,
            "master_user": self.master_user,
            "database": self.database,
            "kind": self.kind,
            "id": self.id,
            "account": self.account,
            "region": self.region,
            "rds_engine": self.rds_engine,
            "ca": os.path.join(DATA_DIR, "ca.pem"),
            "pid": self.proc.pid if self.proc else None,
        }
        if self.flavor == "postgres":
            entry["socket_dir"] = self.socket_dir
        else:
            entry["socket"] = self.socket
        _write_atomically(self.registry_path(), json.dumps(entry, indent=2) + "\n")

    # -- SQL as the internal admin ---------------------------------------------------------

    def admin_sql(self, sql, database=None):
        if self.flavor == "postgres":
            return _psql_at(self.socket_dir, self.port, database or "postgres", sql)
        return _mariadb_client(self, sql, database)

    def set_master_password(self, password):
        if self.flavor == "postgres":
            self.admin_sql(
                f"ALTER ROLE {_pg_ident(self.master_user)} PASSWORD {_pg_literal(password)};\n"
            )
        else:
            self.admin_sql(
                f"ALTER USER {_my_literal(self.master_user)}@'%' "
                f"IDENTIFIED BY PASSWORD '{_my_native_hash(password)}';\nFLUSH PRIVILEGES;\n"
            )

    # -- life ------------------------------------------------------------------------------

    def start(self, address, snapshot=None):
        """Starts from the template, or from a snapshot's data; ready when it returns."""
        self.address = address
        popen_user, self.owner = _os_user(self.flavor)
        self.admin_user = PG_ADMIN if self.flavor == "postgres" else (
            "root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        )
        template = _template(self.flavor)
        last = None
        for _attempt in range(3):
            self.port = _free_port()
            self.dir = os.path.join(
                DATA_DIR, "servers", self.account, self.region, f"{self.id}-{self.port}"
            )
            self.socket_dir = os.path.join(_socket_root(), str(self.port))
            _rmtree(self.dir)
            _mkdir(self.dir, self.owner, 0o755)
            _mkdir(self.socket_dir, self.owner, 0o700)
            self.data = os.path.join(self.dir, "data")
            source = os.path.join(template, "data")
            if snapshot is not None and self.flavor == "postgres":
                source = os.path.join(snapshot, "data")
            _run(["cp", "-a", "--reflink=auto", source, self.data], "copying a data directory")
            _issue(address, os.path.join(self.dir, "tls"), self.owner)
            log = open(self.log, "ab")
            if os.geteuid() == 0:
                os.chown(self.log, *self.owner)
            try:
                if self.flavor == "postgres":
                    self.proc = self._spawn_pg(popen_user, log)
                    try:
                        _wait_pg_ready(self.proc, self.data, self.log)
                        return
                    except DataPlaneFailure as e:
                        last = e
                else:
                    self.socket = os.path.join(self.socket_dir, "mysqld.sock")
                    self.proc = self._spawn_mariadb(popen_user, log)
                    try:
                        _wait_mariadb_ready(self.proc, self.socket, self.log)
                        return
                    except DataPlaneFailure as e:
                        last = e
            finally:
                log.close()
            self.destroy()
            if "already in use" not in str(last) and "Address in use" not in str(last):
                break
        raise last

    def _spawn_pg(self, popen_user, log):
        tls = os.path.join(self.dir, "tls")
        return _popen(
            [
                _pg_tool("postgres"), "-D", self.data, "-p", str(self.port),
                "-k", self.socket_dir, *_pg_settings(),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "ssl=on",
                "-c", f"ssl_cert_file={tls}/server.crt",
                "-c", f"ssl_key_file={tls}/server.key",
                "-c", "unix_socket_permissions=0700",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_env(), cwd="/",
            **popen_user,
        )

    def _spawn_mariadb(self, popen_user, log):
        tls = os.path.join(self.dir, "tls")
        argv = [
            _mariadb_server_binary(), "--no-defaults", f"--datadir={self.data}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
            f"--pid-file={os.path.join(self.dir, 'mariadbd.pid')}",
            f"--log-error={self.log}",
            f"--tmpdir={self.dir}",
            f"--secure-file-priv={self.dir}",
            f"--ssl-cert={tls}/server.crt", f"--ssl-key={tls}/server.key",
            *_mariadb_settings(),
        ]
        return _popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_env(), cwd="/",
            **popen_user,
        )

    def initialize(self, master_user, password, database):
        """Makes the master user and DBName in a fresh server."""
        self.master_user = master_user
        self.database = database or None
        if self.flavor == "postgres":
            user = _pg_ident(master_user)
            sql = f"CREATE ROLE {user} LOGIN CREATEDB CREATEROLE"
            if password:
                sql += f" PASSWORD {_pg_literal(password)}"
            sql += f";\nGRANT rds_superuser TO {user};\n"
            if database:
                sql += f"CREATE DATABASE {_pg_ident(database)} OWNER {user};\n"
            self.admin_sql(sql)
        else:
            # No password said: one no one knows, never an empty one.
            hashed = _my_native_hash(password or secrets.token_urlsafe(24))
            user = f"{_my_literal(master_user)}@'%'"
            sql = (
                f"CREATE USER {user} IDENTIFIED BY PASSWORD '{hashed}';\n"
                f"GRANT {MARIADB_MASTER_PRIVILEGES} ON *.* TO {user} WITH GRANT OPTION;\n"
            )
            if database:
                sql += f"CREATE DATABASE IF NOT EXISTS `{database.replace('`', '``')}`;\n"
            sql += _heartbeat_sql() + "FLUSH PRIVILEGES;\n"
            self.admin_sql(sql)

    def load_dump(self, snapshot):
        """MariaDB: the snapshot's dump into this (fresh) server."""
        with open(os.path.join(snapshot, "dump.sql"), "rb") as dump:
            _mariadb_client(self, stdin=dump)
        self.admin_sql("FLUSH PRIVILEGES;\n" + _heartbeat_sql())

    def capture(self, target):
        """This server's data, now, into the snapshot directory `target`."""
        _rmtree(target)
        os.makedirs(target)
        if self.flavor == "postgres":
            data = os.path.join(target, "data")
            _mkdir(data, self.owner, 0o700)
            popen_user, _ = _os_user("postgres")
            _run(
                [
                    _pg_tool("pg_basebackup"), "-D", data, "-h", self.socket_dir,
                    "-p", str(self.port), "-U", PG_ADMIN, "-X", "stream", "-c", "fast",
                    "--no-sync", "--no-manifest", "-w",
                ],
                "pg_basebackup",
                **popen_user,
            )
        else:
            with open(os.path.join(target, "dump.sql"), "wb") as out:
                _run(
                    [
                        _mariadb_tool("mariadb-dump", "mysqldump"), "--no-defaults",
                        f"--socket={self.socket}", "-u", self.admin_user, "--all-databases",
                        "--single-transaction", "--routines", "--events", "--triggers",
                        "--hex-blob", "--flush-privileges",
                    ],
                    "mariadb-dump",
                    stdout=out,
                )
        meta = {
            "engine": self.flavor,
            "rds_engine": self.rds_engine,
            "master_user": self.master_user,
            "database": self.database,
            "source": "/".join(self.key),
            "taken": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        _write_atomically(os.path.join(target, "meta.json"), json.dumps(meta, indent=2) + "\n")

    def reissue(self, address):
        """A certificate for a new address (after a rename), loaded without a restart."""
        self.address = address
        _issue(address, os.path.join(self.dir, "tls"), self.owner)
        if self.flavor == "postgres":
            self.admin_sql("SELECT pg_reload_conf();\n")
        else:
            self.admin_sql("FLUSH SSL;\n")

    def stop(self, graceful=True):
        if self.proc is not None:
            quick = signal.SIGQUIT if graceful and self.flavor == "postgres" else None
            _stop_proc(self.proc, graceful=quick)
            self.proc = None

    def destroy(self):
        self.stop()
        _rmtree(self.dir)
        _rmtree(self.socket_dir)


def _stop_proc(proc, graceful=None, wait=3.0):
    """Stops a server: `graceful` first if given (PostgreSQL then removes its shared memory),
    SIGKILL if it is still there after `wait` seconds."""
    if proc.poll() is not None:
        return
    try:
        if graceful is not None:
            proc.send_signal(graceful)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _socket_root():
    root = os.environ.get("RDS_HANDOFF_SOCKET_DIR") or (
        f"/tmp/rh-{os.environ.get('MOTO_PORT', os.getpid())}"
    )
    if not os.path.isdir(root):
        _mkdir(root, None, 0o755)
    return root


def _registry_path(account, region, db_id):
    return os.path.join(DATA_DIR, "dbs", account, region, f"{db_id}.json")


def _snapshot_path(account, region, resource_type, snapshot_id):
    return os.path.join(DATA_DIR, "snapshots", account, region, resource_type, snapshot_id)


# ---------------------------------------------------------------------------------------
# State.

_lock = threading.RLock()
_servers = {}  # (account, region, "instance"|"cluster", id) -> Server


def stop_all():
    """Stops every server (server.py calls it before the moto server exits)."""
    if DATA_DIR is None:
        return
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    procs = [s.proc for s in servers if s.proc is not None and s.proc.poll() is None]
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            try:
                if server.flavor == "postgres":
                    # Immediate shutdown: quick, and the postmaster still frees its memory.
                    server.proc.send_signal(signal.SIGQUIT)
                else:
                    server.proc.kill()
            except OSError:
                pass
    deadline = time.monotonic() + 3
    for proc in procs:
        try:
            proc.wait(max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    _rmtree(_socket_root())


def _key(backend, kind, db_id):
    return (backend.account_id, backend.region_name, kind, db_id)


def _opted_in(obj):
    for tag in getattr(obj, "tags", None) or []:
        if tag.get("Key") == TAG and str(tag.get("Value", "")).lower() == "true":
            return True
    return False


def _master_password(obj):
    # moto keeps it behind a property that refuses to give it.
    password = obj.__dict__.get("_master_user_password")
    if getattr(obj, "manage_master_user_password", False) and hasattr(obj, "master_user_secret"):
        try:
            password = json.loads(obj.master_user_secret.secret.secret_string)["password"]
        except (AttributeError, KeyError, TypeError, ValueError):
            pass
    return password or None


def _address(obj, kind):
    return obj.endpoint if kind == "cluster" else obj.address


def _register(server, obj):
    with _lock:
        # moto lets a cluster be created again under a name in use (AWS refuses): the new
        # one replaces the old, and so does its server.
        previous = _servers.pop(server.key, None)
        _servers[server.key] = server
    if previous is not None:
        previous.destroy()
    server.record()


def _new_server(backend, obj, kind, db_id, snapshot=None):
    """Starts a server for `obj` (fresh, or from a snapshot's data) and registers it."""
    flavor = flavor_of(obj.engine)
    if snapshot is None and flavor == "postgres" and str(obj.master_username).lower() == PG_ADMIN:
        raise RDSClientError(
            "InvalidParameterValue",
            f"MasterUsername {obj.master_username} cannot be used as it is a reserved word "
            "used by the engine",
        )
    server = Server(_key(backend, kind, db_id), flavor, obj.engine)
    try:
        server.start(_address(obj, kind), snapshot=snapshot)
        if snapshot is None:
            database = obj.database_name if kind == "cluster" else obj.db_name
            server.initialize(obj.master_username, _master_password(obj), database)
        else:
            with open(os.path.join(snapshot, "meta.json")) as f:
                meta = json.load(f)
            server.master_user = meta.get("master_user") or obj.master_username
            server.database = meta.get("database")
            if flavor == "mariadb":
                server.load_dump(snapshot)
        _register(server, obj)
        return server
    except BaseException:
        server.destroy()
        raise


def _drop_server(key):
    with _lock:
        server = _servers.pop(key, None)
    if server is None:
        return
    try:
        os.remove(server.registry_path())
    except OSError:
        pass
    server.destroy()


def _server(key):
    with _lock:
        return _servers.get(key)


def _snapshot_data(snapshot, resource_type):
    """The directory holding a snapshot's data, or None."""
    path = getattr(snapshot, "_rh_data", None)
    if path and os.path.isdir(path):
        return path
    sid = (
        snapshot.db_snapshot_identifier
        if resource_type == "snapshot"
        else snapshot.db_cluster_snapshot_identifier
    )
    path = _snapshot_path(snapshot.account_id, snapshot.region, resource_type, sid)
    return path if os.path.isfile(os.path.join(path, "meta.json")) else None


def _forget(table, *ids):
    """Takes what moto made out of its table again (moto keys it by the name as given)."""
    for db_id in ids:
        if db_id is not None:
            table.pop(db_id, None)
            table.pop(str(db_id).lower(), None)


def _failure(what, e):
    if isinstance(e, RDSClientError):
        return e
    return DataPlaneFailure(f"{what}: {e}")


# ---------------------------------------------------------------------------------------
# The patches.


def _arg(args, kwargs, name, position, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else default


def _create_instance_call(original):
    def create_db_instance(self):
        result = original(self)
        db_id = self.params.get("DBInstanceIdentifier")
        database = self.backend.databases.get(db_id)
        if (
            database is not None
            and _opted_in(database)
            and getattr(database, "db_cluster_identifier", None) is None
            and flavor_of(database.engine)
        ):
            with _lock:
                try:
                    _new_server(
                        self.backend, database, "instance", database.db_instance_identifier
                    )
                except BaseException as e:
                    self.backend.databases.pop(db_id, None)
                    raise _failure(f"starting the server of {db_id}", e)
        return result

    return create_db_instance


def _create_cluster_call(original):
    def create_db_cluster(self):
        result = original(self)
        cluster_id = self.params.get("DBClusterIdentifier")
        cluster = self.backend.clusters.get(cluster_id)
        if cluster is not None and _opted_in(cluster) and flavor_of(cluster.engine):
            with _lock:
                try:
                    _new_server(self.backend, cluster, "cluster", cluster.db_cluster_identifier)
                except BaseException as e:
                    self.backend.clusters.pop(cluster_id, None)
                    raise _failure(f"starting the server of cluster {cluster_id}", e)
        return result

    return create_db_cluster


def _capture(backend, server, resource_type, snapshot, snapshots):
    sid = (
        snapshot.db_snapshot_identifier
        if resource_type == "snapshot"
        else snapshot.db_cluster_snapshot_identifier
    )
    target = _snapshot_path(backend.account_id, backend.region_name, resource_type, sid)
    try:
        server.capture(target)
    except BaseException as e:
        _rmtree(target)
        _forget(snapshots, sid)
        raise _failure(f"capturing the data of {sid}", e)
    snapshot._rh_data = target


def _snapshot_taker(kind, resource_type, id_arg, store):
    """Wraps moto's CreateDBSnapshot (`kind` "instance") or CreateDBClusterSnapshot
    ("cluster"): a manual snapshot of a database with a server captures its data."""

    def wrap(original):
        def create(self, *args, **kwargs):
            snapshot = original(self, *args, **kwargs)
            if _arg(args, kwargs, "snapshot_type", 2, "manual") != "manual":
                return snapshot
            db_id = str(_arg(args, kwargs, id_arg, 0)).lower()
            with _lock:
                server = _server(_key(self, kind, db_id))
                if server is not None:
                    _capture(self, server, resource_type, snapshot, getattr(self, store))
            return snapshot

        return create

    return wrap


_create_snapshot = _snapshot_taker(
    "instance", "snapshot", "db_instance_identifier", "database_snapshots"
)
_create_cluster_snapshot = _snapshot_taker(
    "cluster", "cluster-snapshot", "db_cluster_identifier", "cluster_snapshots"
)


def _carry(backend, source, copy, resource_type, snapshots):
    data = _snapshot_data(source, resource_type)
    if data is None:
        return
    sid = (
        copy.db_snapshot_identifier
        if resource_type == "snapshot"
        else copy.db_cluster_snapshot_identifier
    )
    target = _snapshot_path(backend.account_id, backend.region_name, resource_type, sid)
    try:
        _rmtree(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Hard links: snapshot data is never written to again, a restore copies it out.
        _run(["cp", "-al", data, target], "copying snapshot data")
    except BaseException as e:
        _rmtree(target)
        _forget(snapshots, sid)
        raise _failure(f"copying the data of {sid}", e)
    copy._rh_data = target


def _copy_snapshot(original):
    def copy_db_snapshot(self, *args, **kwargs):
        copy = original(self, *args, **kwargs)
        source_id = _arg(args, kwargs, "source_db_snapshot_identifier", 0)
        with _lock:
            _carry(self, self.get_db_snapshot(source_id), copy, "snapshot", self.database_snapshots)
        return copy

    return copy_db_snapshot


def _copy_cluster_snapshot(original):
    def copy_db_cluster_snapshot(self, *args, **kwargs):
        copy = original(self, *args, **kwargs)
        source_id = _arg(args, kwargs, "source_db_cluster_snapshot_identifier", 0)
        with _lock:
            _carry(
                self, self.get_db_cluster_snapshot(source_id), copy, "cluster-snapshot",
                self.cluster_snapshots,
            )
        return copy

    return copy_db_cluster_snapshot


def _delete_snapshot(original, resource_type):
    def delete(self, *args, **kwargs):
        snapshot = original(self, *args, **kwargs)
        with _lock:
            data = _snapshot_data(snapshot, resource_type)
            if data is not None:
                _rmtree(data)
        return snapshot

    return delete


def _restore_instance(original):
    def restore_db_instance_from_db_snapshot(self, from_snapshot_id, overrides):
        database = original(self, from_snapshot_id, overrides)
        with _lock:
            data = _snapshot_data(self.get_db_snapshot(from_snapshot_id), "snapshot")
            db_id = database.db_instance_identifier
            if data is not None and flavor_of(database.engine):
                try:
                    _new_server(self, database, "instance", db_id, snapshot=data)
                except BaseException as e:
                    _forget(self.databases, db_id, overrides.get("db_instance_identifier"))
                    raise _failure(f"restoring the server of {db_id}", e)
        return database

    return restore_db_instance_from_db_snapshot


def _restore_cluster(original):
    def restore_db_cluster_from_snapshot(self, from_snapshot_id, overrides):
        cluster = original(self, from_snapshot_id, overrides)
        with _lock:
            snapshot = self.get_db_cluster_snapshot(from_snapshot_id)
            data = _snapshot_data(snapshot, "cluster-snapshot")
            cluster_id = cluster.db_cluster_identifier
            if data is not None and flavor_of(cluster.engine):
                try:
                    _new_server(self, cluster, "cluster", cluster_id, snapshot=data)
                except BaseException as e:
                    _forget(self.clusters, cluster_id, overrides.get("db_cluster_identifier"))
                    raise _failure(f"restoring the server of cluster {cluster_id}", e)
        return cluster

    return restore_db_cluster_from_snapshot


def _point_in_time(backend, kind, source_id, obj, new_id, table, given_id=None):
    server = _server(_key(backend, kind, source_id))
    if server is None or not flavor_of(obj.engine):
        return
    temp = os.path.join(DATA_DIR, "snapshots", ".point-in-time", f"{new_id}-{secrets.token_hex(4)}")
    try:
        server.capture(temp)
        _new_server(backend, obj, kind, new_id, snapshot=temp)
    except BaseException as e:
        _forget(table, new_id, given_id)
        raise _failure(f"restoring the server of {new_id}", e)
    finally:
        _rmtree(temp)


def _restore_instance_to_point_in_time(original):
    def restore_db_instance_to_point_in_time(
        self, source_db_identifier, target_db_identifier, overrides
    ):
        database = original(self, source_db_identifier, target_db_identifier, overrides)
        with _lock:
            _point_in_time(
                self, "instance", str(source_db_identifier).lower(), database,
                database.db_instance_identifier, self.databases, target_db_identifier,
            )
        return database

    return restore_db_instance_to_point_in_time


def _restore_cluster_to_point_in_time(original):
    def restore_db_cluster_to_point_in_time(self, *args, **kwargs):
        cluster = original(self, *args, **kwargs)
        source = str(_arg(args, kwargs, "source_db_cluster_identifier", 1)).lower()
        with _lock:
            _point_in_time(
                self, "cluster", source, cluster, cluster.db_cluster_identifier, self.clusters,
                _arg(args, kwargs, "db_cluster_identifier", 0),
            )
        return cluster

    return restore_db_cluster_to_point_in_time


def _delete_instance(original):
    def delete_db_instance(self, *args, **kwargs):
        database = original(self, *args, **kwargs)  # a final snapshot is taken in there
        with _lock:
            _drop_server(_key(self, "instance", database.db_instance_identifier))
        return database

    return delete_db_instance


def _delete_cluster(original):
    def delete_db_cluster(self, *args, **kwargs):
        cluster = original(self, *args, **kwargs)
        with _lock:
            _drop_server(_key(self, "cluster", cluster.db_cluster_identifier))
        return cluster

    return delete_db_cluster


def _rename(backend, kind, old_id, obj, new_id):
    server = _server(_key(backend, kind, old_id))
    if server is None or old_id == new_id:
        return server
    with _lock:
        _servers.pop(server.key, None)
        try:
            os.remove(server.registry_path())
        except OSError:
            pass
        server.key = _key(backend, kind, new_id)
        server.account, server.region, server.kind, server.id = server.key
        _servers[server.key] = server
    server.reissue(_address(obj, kind))
    server.record()
    return server


def _modify_instance(original):
    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        password = db_kwargs.get("master_user_password")
        manage = db_kwargs.get("manage_master_user_password")
        new_id = db_kwargs.get("new_db_instance_identifier")
        database = original(self, db_instance_identifier, db_kwargs)
        with _lock:
            try:
                server = _rename(
                    self, "instance", str(db_instance_identifier).lower(), database,
                    database.db_instance_identifier,
                )
                if server is not None:
                    if manage:
                        password = _master_password(database)
                    if password:
                        server.set_master_password(password)
            except BaseException as e:
                raise _failure(f"changing the server of {db_instance_identifier}", e)
        return database

    return modify_db_instance


def _modify_cluster(original):
    def modify_db_cluster(self, kwargs):
        given = kwargs.get("db_cluster_identifier")
        password = kwargs.get("master_user_password")
        manage = kwargs.get("manage_master_user_password")
        new_id = kwargs.get("new_db_cluster_identifier")
        result = original(self, kwargs)
        with _lock:
            cluster_id = str(given or "").lower()
            cluster = self.clusters.get(new_id or given)
            try:
                server = (
                    _rename(self, "cluster", cluster_id, cluster, cluster.db_cluster_identifier)
                    if cluster is not None
                    else None
                )
                if server is not None:
                    if manage:
                        password = _master_password(cluster)
                    if password:
                        server.set_master_password(password)
            except BaseException as e:
                raise _failure(f"changing the server of cluster {cluster_id}", e)
        return result

    return modify_db_cluster


def _install():
    os.makedirs(DATA_DIR, exist_ok=True)
    _ca()
    RDSResponse.create_db_instance = _create_instance_call(RDSResponse.create_db_instance)
    RDSResponse.create_db_cluster = _create_cluster_call(RDSResponse.create_db_cluster)
    RDSBackend.create_db_snapshot = _create_snapshot(RDSBackend.create_db_snapshot)
    RDSBackend.create_db_cluster_snapshot = _create_cluster_snapshot(
        RDSBackend.create_db_cluster_snapshot
    )
    RDSBackend.copy_db_snapshot = _copy_snapshot(RDSBackend.copy_db_snapshot)
    RDSBackend.copy_db_cluster_snapshot = _copy_cluster_snapshot(
        RDSBackend.copy_db_cluster_snapshot
    )
    RDSBackend.delete_db_snapshot = _delete_snapshot(RDSBackend.delete_db_snapshot, "snapshot")
    RDSBackend.delete_db_cluster_snapshot = _delete_snapshot(
        RDSBackend.delete_db_cluster_snapshot, "cluster-snapshot"
    )
    RDSBackend.restore_db_instance_from_db_snapshot = _restore_instance(
        RDSBackend.restore_db_instance_from_db_snapshot
    )
    RDSBackend.restore_db_cluster_from_snapshot = _restore_cluster(
        RDSBackend.restore_db_cluster_from_snapshot
    )
    RDSBackend.restore_db_instance_to_point_in_time = _restore_instance_to_point_in_time(
        RDSBackend.restore_db_instance_to_point_in_time
    )
    RDSBackend.restore_db_cluster_to_point_in_time = _restore_cluster_to_point_in_time(
        RDSBackend.restore_db_cluster_to_point_in_time
    )
    RDSBackend.delete_db_instance = _delete_instance(RDSBackend.delete_db_instance)
    RDSBackend.delete_db_cluster = _delete_cluster(RDSBackend.delete_db_cluster)
    RDSBackend.modify_db_instance = _modify_instance(RDSBackend.modify_db_instance)
    RDSBackend.modify_db_cluster = _modify_cluster(RDSBackend.modify_db_cluster)


if DATA_DIR is not None:
    _install()
