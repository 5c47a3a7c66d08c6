"""Settings from the environment: defaults, and a clear refusal naming a bad variable."""

import base64
import multiprocessing
import re
import subprocess

import pytest

from service.settings import Settings, SettingsError


def test_empty_environment_gives_the_documented_defaults(tmp_path):
    settings = Settings.from_environ({"PRINTAPI_VAR_DIR": str(tmp_path)})

    assert settings.database_url is None
    assert (settings.direct_url, settings.transaction_pooling) == (None, False)
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.pool_min_size, settings.pool_max_size) == (1, 10)
    assert (settings.acquire_timeout, settings.statement_timeout) == (5.0, 30.0)
    assert settings.shutdown_timeout == 10.0
    assert settings.lock_timeout == 5.0
    assert settings.long_request_limit == 5
    assert settings.cookie_secure is False
    assert settings.trusted_origins == ()
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 65536
    assert settings.answer_cache_bytes == 33554432
    assert (settings.max_url_bytes, settings.max_header_bytes) == (8190, 8190)
    assert settings.max_headers == 64
    assert settings.login_window == 900
    assert (settings.login_failures_per_email, settings.login_failures_per_address) == (10, 100)


def test_long_requests_default_to_half_the_pool_and_at_least_one():
    halves = [
        Settings.from_environ({"PRINTAPI_POOL_MAX_SIZE": size}).long_request_limit
        for size in ("1", "2", "7")
    ]

    assert halves == [1, 1, 3]


def test_long_request_connections_may_be_the_whole_pool():
    environ = {"PRINTAPI_POOL_MAX_SIZE": "4", "PRINTAPI_LONG_REQUEST_CONNECTIONS": "4"}

    assert Settings.from_environ(environ).long_request_limit == 4


def test_trusted_origins_are_split_on_commas_and_trimmed():
    environ = {"PRINTAPI_TRUSTED_ORIGINS": "https://a.example, https://b.example ,"}

    settings = Settings.from_environ(environ)

    assert settings.trusted_origins == ("https://a.example", "https://b.example")


def test_trusted_origins_are_written_as_a_browser_writes_an_origin():
    environ = {
        "PRINTAPI_TRUSTED_ORIGINS": "https://a.example/,HTTPS://B.Example:443,http://[::1]:8000"
    }

    settings = Settings.from_environ(environ)

    assert settings.trusted_origins == (
        "https://a.example",
        "https://b.example",
        "http://[::1]:8000",
    )


def test_timeouts_may_reach_the_longest_postgresql_takes():
    environ = {
        "PRINTAPI_STATEMENT_TIMEOUT": "2147483.647",
        "PRINTAPI_LOCK_TIMEOUT": "2147483.646",
    }

    settings = Settings.from_environ(environ)

    assert (settings.statement_timeout, settings.lock_timeout) == (2147483.647, 2147483.646)


def test_postgresql_url_with_several_hosts_is_taken():
    url = "postgresql://printapi@db1.internal:5432,db2.internal:5433/printapi"

    assert Settings.from_environ({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PRINTAPI_PORT", "http", "PRINTAPI_PORT must be an integer, not 'http'"),
        ("PRINTAPI_POOL_MAX_SIZE", "0", "PRINTAPI_POOL_MAX_SIZE must be at least 1, not 0"),
        ("PRINTAPI_ACQUIRE_TIMEOUT", "-1", "PRINTAPI_ACQUIRE_TIMEOUT must be more than 0"),
        ("PRINTAPI_LOCK_TIMEOUT", "0", "PRINTAPI_LOCK_TIMEOUT must be more than 0"),
        (
            "PRINTAPI_ACQUIRE_TIMEOUT",
            "nan",
            "PRINTAPI_ACQUIRE_TIMEOUT must be a finite number of seconds, not 'nan'",
        ),
        (
            "PRINTAPI_SHUTDOWN_TIMEOUT",
            "inf",
            "PRINTAPI_SHUTDOWN_TIMEOUT must be a finite number of seconds, not 'inf'",
        ),
        (
            "PRINTAPI_STATEMENT_TIMEOUT",
            "-Infinity",
            "PRINTAPI_STATEMENT_TIMEOUT must be a finite number of seconds, not '-Infinity'",
        ),
        (
            "PRINTAPI_STATEMENT_TIMEOUT",
            "1e7",
            "PRINTAPI_STATEMENT_TIMEOUT must be at most 2147483.647, not 10000000.0",
        ),
        (
            "PRINTAPI_LOCK_TIMEOUT",
            "2147483.648",
            "PRINTAPI_LOCK_TIMEOUT must be at most 2147483.647, not 2147483.648",
        ),
        (
            "PRINTAPI_LOCK_TIMEOUT",
            "30",
            "PRINTAPI_LOCK_TIMEOUT must be below PRINTAPI_STATEMENT_TIMEOUT (30.0), not 30.0",
        ),
        (
            "PRINTAPI_POOL_MIN_SIZE",
            "11",
            "PRINTAPI_POOL_MIN_SIZE must be at most PRINTAPI_POOL_MAX_SIZE (10), not 11",
        ),
        (
            "DATABASE_URL",
            "garbage",
            "DATABASE_URL must be a postgresql:// or postgres:// URL, not something else",
        ),
        (
            "DATABASE_URL",
            "mysql://printapi:secret@db.internal/printapi",
            "DATABASE_URL must be a postgresql:// or postgres:// URL, not a mysql:// URL",
        ),
        (
            "DATABASE_URL",
            "postgresql://printapi@db.internal:99999/printapi",
            "DATABASE_URL cannot be used: the port must be from 1 to 65535, not 99999",
        ),
        (
            "DATABASE_URL",
            "postgres://printapi@db.internal/printapi?sslmode=sometimes",
            "DATABASE_URL cannot be used: `sslmode` parameter must be one of: disable,",
        ),
        (
            "PRINTAPI_TRUSTED_ORIGINS",
            "https://a.example, https://b.example/app",
            "PRINTAPI_TRUSTED_ORIGINS must list origins, scheme://host[:port] with no path, "
            "not 'https://b.example/app'",
        ),
        (
            "PRINTAPI_TRUSTED_ORIGINS",
            "b.example",
            "PRINTAPI_TRUSTED_ORIGINS must list origins, scheme://host[:port] with no path, "
            "not 'b.example'",
        ),
        (
            "PRINTAPI_TRUSTED_ORIGINS",
            "https://b.example?x=1",
            "PRINTAPI_TRUSTED_ORIGINS must list origins, scheme://host[:port] with no path, "
            "not 'https://b.example?x=1'",
        ),
        (
            "PRINTAPI_LONG_REQUEST_CONNECTIONS",
            "11",
            "PRINTAPI_LONG_REQUEST_CONNECTIONS must be at most PRINTAPI_POOL_MAX_SIZE (10)",
        ),
        (
            "PRINTAPI_LONG_REQUEST_CONNECTIONS",
            "0",
            "PRINTAPI_LONG_REQUEST_CONNECTIONS must be at least 1, not 0",
        ),
        ("PRINTAPI_COOKIE_SECURE", "maybe", "PRINTAPI_COOKIE_SECURE must be true or false"),
        ("PRINTAPI_LOG_LEVEL", "loud", "PRINTAPI_LOG_LEVEL must be DEBUG, INFO, WARNING"),
        ("PRINTAPI_SECRET_KEY", "short", "PRINTAPI_SECRET_KEY must hold 32 bytes"),
        ("PRINTAPI_MAX_BODY_BYTES", "100", "PRINTAPI_MAX_BODY_BYTES must be at least 1024"),
        (
            "PRINTAPI_ANSWER_CACHE_BYTES",
            "-1",
            "PRINTAPI_ANSWER_CACHE_BYTES must be at least 0, not -1",
        ),
        ("PRINTAPI_MAX_HEADERS", "8", "PRINTAPI_MAX_HEADERS must be at least 16, not 8"),
        ("PRINTAPI_LOGIN_WINDOW", "0", "PRINTAPI_LOGIN_WINDOW must be at least 1, not 0"),
        (
            "PRINTAPI_LOGIN_FAILURES_PER_EMAIL",
            "-1",
            "PRINTAPI_LOGIN_FAILURES_PER_EMAIL must be at least 0",
        ),
        (
            "PRINTAPI_TRANSACTION_POOLING",
            "sometimes",
            "PRINTAPI_TRANSACTION_POOLING must be true or false",
        ),
        (
            "PRINTAPI_DIRECT_DATABASE_URL",
            "postgresql://db.internal/printapi",
            "PRINTAPI_DIRECT_DATABASE_URL needs DATABASE_URL",
        ),
    ],
)
def test_bad_value_is_refused_naming_the_variable(name, value, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({name: value})

    assert str(raised.value).startswith(message)
    assert "secret" not in str(raised.value)


def test_direct_database_url_defaults_to_database_url():
    settings = Settings.from_environ({"DATABASE_URL": "postgresql://db.internal/printapi"})

    assert settings.direct_url == "postgresql://db.internal/printapi"


def test_direct_database_url_is_used_where_set():
    environ = {
        "DATABASE_URL": "postgresql://127.0.0.1:6432/printapi",
        "PRINTAPI_DIRECT_DATABASE_URL": "postgresql://db.internal/printapi",
    }

    settings = Settings.from_environ(environ)

    assert settings.database_url == "postgresql://127.0.0.1:6432/printapi"
    assert settings.direct_url == "postgresql://db.internal/printapi"


def test_transaction_pooling_is_refused_without_a_direct_database_url():
    environ = {
        "DATABASE_URL": "postgresql://127.0.0.1:6432/printapi",
        "PRINTAPI_TRANSACTION_POOLING": "true",
    }

    with pytest.raises(SettingsError) as raised:
        Settings.from_environ(environ)

    assert str(raised.value) == (
        "PRINTAPI_TRANSACTION_POOLING needs PRINTAPI_DIRECT_DATABASE_URL, the database "
        "itself: notifications (LISTEN) cannot pass a transaction pooler"
    )


def test_session_key_is_made_once_and_kept_in_var(tmp_path):
    settings = Settings.from_environ({"PRINTAPI_VAR_DIR": str(tmp_path)})

    first = settings.session_key()
    second = Settings.from_environ({"PRINTAPI_VAR_DIR": str(tmp_path)}).session_key()

    assert first == second
    assert len(first) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def _read_key_after(barrier, var_dir, answers) -> None:
    barrier.wait()
    answers.put(Settings.from_environ({"PRINTAPI_VAR_DIR": var_dir}).session_key())


def test_processes_starting_together_all_read_the_one_key_made(tmp_path):
    # Workers of one `serve --workers` used to race here: one read the file another had
    # created but not yet written, and died on an empty key.
    context = multiprocessing.get_context("fork")
    processes_per_round, rounds = 4, 20
    keys = []
    for round_number in range(rounds):
        var_dir = tmp_path / str(round_number)
        barrier, answers = context.Barrier(processes_per_round), context.Queue()
        processes = [
            context.Process(target=_read_key_after, args=(barrier, str(var_dir), answers))
            for _ in range(processes_per_round)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=30)  # A few bytes each: they fit the pipe, so exit is not held.

        assert [process.exitcode for process in processes] == [0] * processes_per_round
        read = [answers.get(timeout=5) for _ in processes]
        assert read == [read[0]] * processes_per_round
        assert sorted(path.name for path in var_dir.iterdir()) == ["secret.key"]
        keys.append(read[0])

    assert len(set(keys)) == rounds


def test_a_damaged_key_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "secret.key").write_bytes(b"\xffnot a key\n")
    settings = Settings.from_environ({"PRINTAPI_VAR_DIR": str(tmp_path)})

    with pytest.raises(SettingsError) as raised:
        settings.session_key()

    assert str(raised.value).startswith(f"{tmp_path / 'secret.key'} must hold 32 bytes")


def test_a_key_that_cannot_be_kept_is_refused_saying_what_to_set(tmp_path):
    (tmp_path / "file").write_text("a file where a directory should be")
    settings = Settings.from_environ({"PRINTAPI_VAR_DIR": str(tmp_path / "file" / "var")})

    with pytest.raises(SettingsError) as raised:
        settings.session_key()

    assert str(raised.value) == (
        f"cannot keep the session key in {tmp_path / 'file' / 'var' / 'secret.key'}: "
        "Not a directory; "
        "set PRINTAPI_SECRET_KEY, or PRINTAPI_VAR_DIR to a writable directory"
    )


def test_secret_key_from_the_environment_wins_over_var(tmp_path):
    key = bytes(range(32))
    environ = {
        "PRINTAPI_VAR_DIR": str(tmp_path),
        "PRINTAPI_SECRET_KEY": base64.urlsafe_b64encode(key).decode(),
    }

    assert Settings.from_environ(environ).session_key() == key
    assert not (tmp_path / "secret.key").exists()


def test_the_command_the_key_error_suggests_makes_a_key_that_is_taken():
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({"PRINTAPI_SECRET_KEY": "short"})
    command = re.search(r"python3 -c '(.*)'$", str(raised.value)).group(1)

    made = subprocess.run(
        ["python3", "-c", command], capture_output=True, text=True, check=True
    ).stdout.strip()

    settings = Settings.from_environ({"PRINTAPI_SECRET_KEY": made})
    assert len(settings.session_key()) == 32
