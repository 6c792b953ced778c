"""The real servers the cluster tests stand on: they start, die and come back."""

from __future__ import annotations

from redis import Redis

from tests.services import RedisServer, _redis_ping, postgres_server, redis_server


def test_redis_is_killed_and_restarted_on_its_port(redis_srv: RedisServer) -> None:
    port = redis_srv.port
    assert _redis_ping(port)
    redis_srv.kill()
    assert not _redis_ping(port)
    redis_srv.start()
    assert redis_srv.port == port and _redis_ping(port)


def test_redis_without_aof_forgets_and_with_aof_keeps_across_kill_9() -> None:
    for appendonly in (False, True):
        with redis_server(appendonly=appendonly) as srv:
            client = Redis.from_url(srv.url)
            client.set("k", "v")
            client.close()
            srv.restart()
            client = Redis.from_url(srv.url)
            assert client.get("k") == (b"v" if appendonly else None)
            client.close()


def test_postgres_starts_stops_and_comes_back() -> None:
    with postgres_server() as pg:
        assert pg.psql("select 1") == "1"
        pg.psql("create table t (n int); insert into t values (42)")
        pg.stop("immediate")  # a crash: recovery on the next start
        pg.start()
        assert pg.psql("select n from t") == "42"
        assert pg.url == f"postgresql://wallboard@127.0.0.1:{pg.port}/wallboard"
