"""One hint table for failed connections, read by our own connections and the client programs."""

from __future__ import annotations

from erpprov.ops.backup import _client_failure
from erpprov.postgres.connect import _hint

SERVER_DOWN = "is the server running? `erpprov status` tells; `erpprov apply` starts the container or cluster"
LOGIN = "check pg_user / pg_database for this host in the inventory"


def test_the_same_failure_gets_the_same_hint_from_both() -> None:
    for message in ('connection to server at "h", port 5432 failed: Connection refused',
                    'connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file or directory',
                    'connection to server at "h" failed: FATAL:  password authentication failed for user "u"',
                    "fe_sendauth: no password supplied",
                    'connection to server at "h" failed: FATAL:  role "nobody" does not exist'):
        assert _hint(message) is not None
        assert _client_failure("pg_dump: error: " + message)[1] == _hint(message)
    assert _hint("Connection refused") == SERVER_DOWN


def test_a_role_a_restored_statement_names_is_not_the_login_role() -> None:
    hint = _client_failure('pg_restore: error: could not execute query: ERROR:  role "app" does not exist')[1]
    assert hint is not None and "the dump names roles" in hint
    assert _client_failure('pg_dump: error: connection to server failed: FATAL:  role "x" does not exist')[1] == LOGIN
