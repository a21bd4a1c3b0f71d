"""One engine used from many threads at once."""
import threading
from concurrent.futures import ThreadPoolExecutor

from keystead import Engine, KeysteadError

from conftest import API, DB, PASSWORD, Machine, settings, unique


def test_many_threads_call_one_engine(engine: Engine, machine: Machine, tenant: str):
    token = machine.token()

    def work(i: int) -> list:
        where = tenant if i % 2 else None
        seen = []
        for j in range(10):
            role = engine.roles.create(name=unique(f"t{i}-{j}"), tenant=where)
            seen.append(engine.roles.get(role["id"], tenant=where)["name"] == role["name"])
            r = engine.handle("GET", f"/t/{tenant}/.well-known/openid-configuration")
            seen.append(r.json()["issuer"].endswith(f"/t/{tenant}/"))
            seen.append(engine.tokens.verify(token, audience=API)["sub"] ==
                        machine.client_id + "@clients")
        return seen

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert all(all(r) and len(r) == 30 for r in results)


def test_the_gil_is_released_during_calls(engine: Engine):
    """Password hashing takes a while in C; Python threads keep running meanwhile."""
    email = f"{unique('gil')}@example.com"
    user = engine.users.create(connection=DB, email=email, password=PASSWORD)
    done = threading.Event()
    ids = []

    def check() -> None:
        for _ in range(3):
            ids.append(engine.check_password(email, PASSWORD))
        done.set()

    worker = threading.Thread(target=check)
    worker.start()
    spins = 0
    while not done.is_set():
        spins += 1
    worker.join()
    assert ids == [user["user_id"]] * 3
    assert spins > 10_000, spins


def test_close_while_other_threads_call(tmp_path):
    """close() waits for the calls in progress; later calls raise KeysteadError, none crash."""
    engine = Engine(settings(tmp_path))
    engine.users.create(connection=DB, email="c@example.com", password=PASSWORD)
    started = threading.Barrier(5)
    outcomes: list = []

    def hammer() -> None:
        started.wait()
        ok = closed = 0
        while closed == 0:
            try:
                engine.check_password("c@example.com", PASSWORD)
                engine.roles.list()
                ok += 1
            except KeysteadError as e:
                assert "closed" in e.message
                closed += 1
        outcomes.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    engine.roles.create(name="while-busy")
    engine.close()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 4 and engine.closed
