"""stratum.db.sqlite3: SQLite writers queue on a file lock, released at commit, rollback, close and exit."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from django.db.utils import ConnectionHandler

from stratum.db.sqlite3.base import DatabaseCreation, lock_path


def _wrapper(name: str):
    handler = ConnectionHandler({"default": {"ENGINE": "stratum.db.sqlite3", "NAME": name,
                                             "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30}}})
    return handler.create_connection("default")


def _begin(conn) -> None:
    """What transaction.atomic does on entering an outermost block."""
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def _end(conn, commit: bool = True) -> None:
    conn.commit() if commit else conn.rollback()
    conn.set_autocommit(True)


def _lock_is_free(name: str) -> bool:
    fd = os.open(lock_path(name), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These tests open their own SQLite files, never the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def db_file(tmp_path):
    name = str(tmp_path / "writers.sqlite3")
    conn = _wrapper(name)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (writer TEXT)")
    conn.close()
    return name


def test_a_second_writer_waits_for_the_first_and_goes_as_soon_as_it_commits(db_file):
    first = _wrapper(db_file)
    _begin(first)
    first.cursor().execute("INSERT INTO t VALUES ('first')")
    started, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        conn = _wrapper(db_file)
        _begin(conn)
        started.set()
        conn.cursor().execute("INSERT INTO t VALUES ('second')")
        _end(conn)
        conn.close()
        done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not started.wait(0.3)  # queued behind the first transaction
    _end(first)
    assert done.wait(10)
    thread.join()
    rows = first.cursor().execute("SELECT writer FROM t ORDER BY rowid").fetchall()
    assert [r[0] for r in rows] == ["first", "second"]
    first.close()
    assert _lock_is_free(db_file)


def test_the_lock_is_held_for_the_transaction_and_released_by_rollback_and_by_close(db_file):
    conn = _wrapper(db_file)
    _begin(conn)
    assert not _lock_is_free(db_file)
    conn.cursor().execute("INSERT INTO t VALUES ('rolled back')")
    _end(conn, commit=False)
    assert _lock_is_free(db_file)
    assert conn.cursor().execute("SELECT count(*) FROM t").fetchone()[0] == 0

    _begin(conn)
    assert not _lock_is_free(db_file)
    conn.close()
    assert _lock_is_free(db_file)


def test_reads_outside_a_transaction_do_not_take_the_lock(db_file):
    holder, reader = _wrapper(db_file), _wrapper(db_file)
    _begin(holder)
    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone()[0] == 0  # WAL readers never wait
    _end(holder)
    holder.close()
    reader.close()


def test_a_forked_child_opens_its_own_lock_instead_of_sharing_the_parents(db_file):
    conn = _wrapper(db_file)
    _begin(conn)  # the parent holds the lock through a descriptor the child inherits
    pid = os.fork()
    if pid == 0:  # child: never touch the inherited SQLite connection, only the lock
        code = 1
        try:
            fd = conn._writers_fd()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                code = 0  # excluded by the parent's lock: a descriptor of its own
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    _end(conn)
    conn.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_in_memory_databases_take_no_file_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conn = _wrapper(":memory:")
    _begin(conn)
    conn.cursor().execute("CREATE TABLE t (x)")
    _end(conn)
    conn.close()
    assert list(tmp_path.iterdir()) == []


def test_destroying_a_test_database_removes_its_lock_file(db_file):
    conn = _wrapper(db_file)
    _begin(conn)
    _end(conn)
    conn.close()
    assert os.path.exists(lock_path(db_file))
    DatabaseCreation(conn)._destroy_test_db(db_file, verbosity=0)
    assert not os.path.exists(db_file) and not os.path.exists(lock_path(db_file))
