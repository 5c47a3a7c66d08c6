"""Configuration from the environment, read once at start-up into one frozen object."""

import base64
import contextlib
import inspect
import ipaddress
import math
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import attrs
from asyncpg import connect_utils

from service import PROJECT_ROOT


class SettingsError(Exception):
    """An environment variable holds a value the service cannot use."""


def _int(environ, name: str, default: int, minimum: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


#: The longest timeout PostgreSQL takes, in seconds: it keeps them as int milliseconds.
MAX_POSTGRES_TIMEOUT = (2**31 - 1) / 1000


def _float(environ, name: str, default: float, maximum: float = math.inf) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number of seconds, not {raw!r}")
    if value <= 0:
        raise SettingsError(f"{name} must be more than 0, not {value}")
    if value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, not {value}")
    return value


def _bool(environ, name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


@attrs.frozen
class TrustedProxies:
    """The peers whose X-Forwarded-For and X-Forwarded-Proto are believed (service/forwarded.py).

    ``unix`` trusts any peer on the unix socket, as nginx is when it proxies to one.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    unix: bool = False

    @classmethod
    def parse(cls, text: str) -> "TrustedProxies":
        """Reads "unix, 127.0.0.1, 10.0.0.0/8"; raises SettingsError naming a bad entry."""
        networks, unix = [], False
        for entry in (part.strip() for part in text.split(",")):
            if entry == "unix":
                unix = True
            elif entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise SettingsError(
                        "PRINTAPI_TRUSTED_PROXIES must list addresses, networks or unix, "
                        f"not {entry!r}"
                    ) from None
        return cls(tuple(networks), unix)

    def trusts(self, address: str) -> bool:
        """Whether the peer at ``address`` ("" on a unix socket) is a trusted proxy."""
        if not address:
            return self.unix
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


@attrs.frozen
class Settings:
    """Everything the service reads from its environment; see the README for each variable."""

    database_url: str | None = None
    #: PostgreSQL itself when DATABASE_URL leads to a pooler; None: DATABASE_URL.
    direct_database_url: str | None = None
    #: DATABASE_URL leads to a pooler in transaction mode, such as PgBouncer's.
    transaction_pooling: bool = False
    var_dir: Path = PROJECT_ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: bytes | None = None
    pool_min_size: int = 1
    pool_max_size: int = 10
    acquire_timeout: float = 5.0
    statement_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    lock_timeout: float = 5.0
    #: None: half the pool (see ``long_request_limit``).
    long_request_connections: int | None = None
    session_max_age: int = 14 * 24 * 3600
    cookie_secure: bool = False
    trusted_origins: tuple[str, ...] = ()
    trusted_proxies: TrustedProxies = TrustedProxies()
    log_level: str = "INFO"
    max_body_bytes: int = 64 * 1024
    #: Bytes of answers each worker keeps for polls that find nothing changed (0: none).
    answer_cache_bytes: int = 32 * 1024 * 1024
    body_timeout: float = 30.0
    max_url_bytes: int = 8190
    max_header_bytes: int = 8190
    max_headers: int = 64
    login_window: int = 15 * 60
    login_failures_per_email: int = 10
    login_failures_per_address: int = 100

    @classmethod
    def from_environ(cls, environ=os.environ) -> "Settings":
        """Reads the settings; raises SettingsError naming the variable that is wrong."""
        key = environ.get("PRINTAPI_SECRET_KEY") or None
        database_url = _database_url(environ)
        settings = cls(
            database_url=database_url,
            direct_database_url=_direct_database_url(environ, database_url),
            transaction_pooling=_transaction_pooling(environ),
            var_dir=Path(environ.get("PRINTAPI_VAR_DIR") or PROJECT_ROOT / "var"),
            host=environ.get("PRINTAPI_HOST") or "127.0.0.1",
            port=_int(environ, "PRINTAPI_PORT", 8080, 0),
            secret_key=_decode_key(key, "PRINTAPI_SECRET_KEY") if key else None,
            pool_min_size=_pool_min_size(environ),
            pool_max_size=_int(environ, "PRINTAPI_POOL_MAX_SIZE", 10, 1),
            acquire_timeout=_float(environ, "PRINTAPI_ACQUIRE_TIMEOUT", 5.0),
            statement_timeout=_float(
                environ, "PRINTAPI_STATEMENT_TIMEOUT", 30.0, MAX_POSTGRES_TIMEOUT
            ),
            shutdown_timeout=_float(environ, "PRINTAPI_SHUTDOWN_TIMEOUT", 10.0),
            lock_timeout=_float(environ, "PRINTAPI_LOCK_TIMEOUT", 5.0, MAX_POSTGRES_TIMEOUT),
            long_request_connections=_long_request_connections(environ),
            session_max_age=_int(environ, "PRINTAPI_SESSION_MAX_AGE", 14 * 24 * 3600, 60),
            cookie_secure=_bool(environ, "PRINTAPI_COOKIE_SECURE", False),
            trusted_origins=_trusted_origins(environ.get("PRINTAPI_TRUSTED_ORIGINS", "")),
            trusted_proxies=TrustedProxies.parse(environ.get("PRINTAPI_TRUSTED_PROXIES", "")),
            log_level=_log_level(environ),
            max_body_bytes=_int(environ, "PRINTAPI_MAX_BODY_BYTES", 64 * 1024, 1024),
            answer_cache_bytes=_int(environ, "PRINTAPI_ANSWER_CACHE_BYTES", 32 * 1024 * 1024, 0),
            body_timeout=_float(environ, "PRINTAPI_BODY_TIMEOUT", 30.0),
            max_url_bytes=_int(environ, "PRINTAPI_MAX_URL_BYTES", 8190, 256),
            max_header_bytes=_int(environ, "PRINTAPI_MAX_HEADER_BYTES", 8190, 1024),
            max_headers=_int(environ, "PRINTAPI_MAX_HEADERS", 64, 16),
            login_window=_int(environ, "PRINTAPI_LOGIN_WINDOW", 15 * 60, 1),
            login_failures_per_email=_int(environ, "PRINTAPI_LOGIN_FAILURES_PER_EMAIL", 10, 0),
            login_failures_per_address=_int(
                environ, "PRINTAPI_LOGIN_FAILURES_PER_ADDRESS", 100, 0
            ),
        )

        # A lock wait cut by the statement timeout would answer "too slow" for "locked".
        if settings.lock_timeout >= settings.statement_timeout:
            raise SettingsError(
                "PRINTAPI_LOCK_TIMEOUT must be below PRINTAPI_STATEMENT_TIMEOUT"
                f" ({settings.statement_timeout}), not {settings.lock_timeout}"
            )
        return settings

    @property
    def direct_url(self) -> str | None:
        """Where a session of PostgreSQL's own is needed: LISTEN, advisory locks, commands."""
        return self.direct_database_url or self.database_url

    @property
    def long_request_limit(self) -> int:
        """How many pooled connections PATCHes and unpaged lists may hold at once."""
        if self.long_request_connections is not None:
            return self.long_request_connections
        return max(1, self.pool_max_size // 2)

    def session_key(self) -> bytes:
        """The 32-byte key that encrypts session cookies.

        PRINTAPI_SECRET_KEY when set; otherwise a key made once and kept in var/secret.key,
        so that restarts and every worker read the same cookies.
        """
        if self.secret_key is not None:
            return self.secret_key

        path = self.var_dir / "secret.key"
        try:
            if not path.exists():
                _write_new_key(path)
            encoded = path.read_bytes().decode("ascii", "replace").strip()
        except OSError as error:
            raise SettingsError(
                f"cannot keep the session key in {path}: {error.strerror}; "
                "set PRINTAPI_SECRET_KEY, or PRINTAPI_VAR_DIR to a writable directory"
            ) from None
        return _decode_key(encoded, str(path))


def _write_new_key(path: Path) -> None:
    """Puts a new random key at ``path`` whole, unless another process put one there first.

    The key is written under a name of its own and then linked into place: a process that
    starts beside this one reads either no file or a complete one, never a half-written key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n")
        # When another process linked its key first, every process reads that one.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        os.unlink(draft)


def _database_url(environ) -> str | None:
    """DATABASE_URL, once asyncpg has read it as a connect would: a URL it cannot use
    fails here, in one line, rather than as a traceback when the first connection opens.

    The URL may hold a password, so no message shows more of it than its scheme.
    """
    url = environ.get("DATABASE_URL") or None
    if url is None:
        return None

    scheme, separator, _ = url.partition("://")
    if not separator or scheme not in ("postgresql", "postgres"):
        shown = f"a {scheme}:// URL" if separator and scheme.isascii() else "something else"
        raise SettingsError(
            f"DATABASE_URL must be a postgresql:// or postgres:// URL, not {shown}"
        )

    problem = _dsn_problem(url)
    if problem is not None:
        raise SettingsError(f"DATABASE_URL cannot be used: {problem}")
    return url


def _dsn_problem(url: str) -> str | None:
    """What keeps asyncpg from connecting with ``url``, as its own parser says, or None."""
    # The parser is asyncpg's own, not public: the arguments it has are passed as a connect
    # without other arguments would pass them. XXX: being private, it may change with an
    # asyncpg release; tests/test_settings.py would then fail on the refusals it makes.
    parse = connect_utils._parse_connect_dsn_and_args
    arguments = {name: None for name in inspect.signature(parse).parameters}
    try:
        addresses = parse(**{**arguments, "dsn": url})[0]
    except (asyncpg.ClientConfigurationError, ValueError, UnicodeError) as error:
        return str(error)

    for address in addresses:
        if isinstance(address, tuple) and not 1 <= address[1] <= 65535:
            return f"the port must be from 1 to 65535, not {address[1]}"
    return None


def _pool_min_size(environ) -> int:
    return _within_pool(environ, "PRINTAPI_POOL_MIN_SIZE", 1, 0)


def _within_pool(environ, name: str, default: int, minimum: int) -> int:
    """The integer setting ``name``, which counts connections of the pool: at most
    PRINTAPI_POOL_MAX_SIZE."""
    pool_max_size = _int(environ, "PRINTAPI_POOL_MAX_SIZE", 10, 1)
    value = _int(environ, name, default, minimum)
    if value > pool_max_size:
        raise SettingsError(
            f"{name} must be at most PRINTAPI_POOL_MAX_SIZE ({pool_max_size}), not {value}"
        )
    return value


#: The port a browser leaves out of an Origin for each scheme.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _trusted_origins(text: str) -> tuple[str, ...]:
    """The origins in "https://a.example, http://b.example:8000", written as a browser
    writes an Origin header, so that comparing them to one is comparing strings."""
    origins = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            origins.append(_origin(entry))
    return tuple(origins)


def _origin(entry: str) -> str:
    refusal = SettingsError(
        "PRINTAPI_TRUSTED_ORIGINS must list origins, scheme://host[:port] with no path, "
        f"not {entry!r}"
    )
    try:
        parts = urlsplit(entry.removesuffix("/"))
        port = parts.port
    except ValueError:
        raise refusal from None
    if (
        not parts.scheme
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path
        or "?" in entry
        or "#" in entry
        or not entry.isascii()
    ):
        raise refusal

    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def _long_request_connections(environ) -> int | None:
    if not environ.get("PRINTAPI_LONG_REQUEST_CONNECTIONS"):
        return None
    return _within_pool(environ, "PRINTAPI_LONG_REQUEST_CONNECTIONS", 1, 1)


def _direct_database_url(environ, database_url: str | None) -> str | None:
    direct = environ.get("PRINTAPI_DIRECT_DATABASE_URL") or None
    if direct is not None and database_url is None:
        raise SettingsError(
            "PRINTAPI_DIRECT_DATABASE_URL needs DATABASE_URL: without it, the embedded "
            "PostgreSQL serves every connection"
        )
    return direct


def _transaction_pooling(environ) -> bool:
    """Whether DATABASE_URL leads to a transaction pooler; refused without a direct URL,
    since notifications and the migrations' lock need a session of their own."""
    pooling = _bool(environ, "PRINTAPI_TRANSACTION_POOLING", False)
    if pooling and not environ.get("PRINTAPI_DIRECT_DATABASE_URL"):
        raise SettingsError(
            "PRINTAPI_TRANSACTION_POOLING needs PRINTAPI_DIRECT_DATABASE_URL, the database "
            "itself: notifications (LISTEN) cannot pass a transaction pooler"
        )
    return pooling


def _log_level(environ) -> str:
    level = (environ.get("PRINTAPI_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(
            f"PRINTAPI_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level}"
        )
    return level


def _decode_key(encoded: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise SettingsError(
            f"{source} must hold 32 bytes in URL-safe base64, as made by: "
            "python3 -c 'import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        )
    return key
