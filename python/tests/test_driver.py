"""SmartSim-style driver scripts against real orc: databases, ensembles of real SmartRedis
programs, key prefixing, status, reconnect, stop, and bad input.

Run with the venv that has smartredis and the orc package:
``python -m pytest python/tests`` (``tests/python_api.rs`` does, in CI). Needs
``ORC_AI_MODULE`` (or an ``orc`` on PATH with ``liborc_ai.so`` beside it)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import orc
from orc import Experiment, status

PRODUCER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from smartredis import Client
    value = float(sys.argv[1].split("=")[1])
    c = Client(logger_name="producer")
    c.put_tensor("field", np.full(4, value, dtype=np.float32))
    print("wrote", value)
    """
)

CONSUMER = textwrap.dedent(
    """
    import os
    from smartredis import Client
    c = Client(logger_name="consumer")
    total = 0.0
    for source in os.environ["SSKEYIN"].split(","):
        c.set_data_source(source)
        assert c.poll_tensor("field", 100, 50), source
        total += float(c.get_tensor("field").sum())
    print("total", total)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_of(db) -> list:
    return [int(s["step"].split("@")[0]) for s in db._record["shards"]]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def exp(tmp_path):
    e = Experiment("drv", exp_path=str(tmp_path / "drv"), launcher="local")
    yield e
    e._stop_everything()


def scripts(tmp_path):
    (tmp_path / "producer.py").write_text(PRODUCER)
    (tmp_path / "consumer.py").write_text(CONSUMER)
    return str(tmp_path / "producer.py"), str(tmp_path / "consumer.py")


def test_three_shards_an_ensemble_and_a_consumer_through_key_prefixes(exp, tmp_path):
    producer, consumer = scripts(tmp_path)
    db = exp.create_database(port=0, db_nodes=3)
    assert isinstance(db, orc.Orchestrator) and db.num_shards == 3
    assert exp.get_status(db) == [status.STATUS_NEW] * 3
    exp.start(db)
    assert db.is_active()
    assert len(db.get_address()) == 3
    assert exp.get_status(db) == [status.STATUS_RUNNING] * 3

    rs = exp.create_run_settings(sys.executable, exe_args=[producer], env_vars={"SR_LOG_LEVEL": "quiet"})
    ens = exp.create_ensemble("sim", params={"value": [1, 2, 3, 4]}, run_settings=rs, params_as_args=["value"])
    assert len(ens.models) == 4
    ens.enable_key_prefixing()
    exp.generate(ens)
    exp.start(ens, block=True)
    assert exp.get_status(ens) == [status.STATUS_COMPLETED] * 4
    assert all(exp.finished(m) for m in ens.models)
    for m in ens.models:
        with open(os.path.join(m.path, f"{m.name}.out")) as f:
            assert f.read().startswith("wrote"), m.name

    crs = exp.create_run_settings(sys.executable, exe_args=[consumer], env_vars={"SR_LOG_LEVEL": "quiet"})
    reader = exp.create_model("reader", crs)
    for m in ens.models:
        reader.register_incoming_entity(m)
    exp.start(reader, block=False)
    exp.poll(interval=1, verbose=False)
    assert exp.get_status(reader) == [status.STATUS_COMPLETED]
    with open(os.path.join(reader.path, "reader.out")) as f:
        assert f.read().split() == ["total", str(4 * (1.0 + 2 + 3 + 4))]

    table = exp.summary()
    for name in ["sim_0", "sim_3", "reader", "orchestrator_0"]:
        assert name in table, table
    pids = pids_of(db)
    exp.stop(db)
    assert not db.is_active()
    deadline = time.time() + 10
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), "a shard outlived stop"


def test_generate_configures_copies_and_links(exp, tmp_path):
    (tmp_path / "in.txt").write_text("steps = ;steps;\n")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    rs = exp.create_run_settings("true")
    ens = exp.create_ensemble("gen", params={"steps": [10, 20]}, run_settings=rs)
    ens.attach_generator_files(
        to_configure=[str(tmp_path / "in.txt")], to_copy=[str(tmp_path / "data.bin")], to_symlink=[str(tmp_path / "in.txt")]
    )
    exp.generate(ens, overwrite=True)
    for m, steps in zip(ens.models, ["10", "20"]):
        with open(os.path.join(m.path, "in.txt")) as f:
            # The configured copy wins over the link of the same name made before it.
            assert f.read() == f"steps = {steps}\n"
        assert os.path.isfile(os.path.join(m.path, "data.bin"))
    # The user's own file is untouched.
    assert (tmp_path / "in.txt").read_text() == "steps = ;steps;\n"


def test_permutation_strategies_and_replicas(exp):
    rs = exp.create_run_settings("true")
    p = {"a": [1, 2], "b": [3, 4]}
    assert len(exp.create_ensemble("x", params=p, run_settings=rs).models) == 4
    assert len(exp.create_ensemble("y", params=p, run_settings=rs, perm_strategy="step").models) == 2
    assert len(exp.create_ensemble("z", params=p, run_settings=rs, perm_strategy="random", n_models=3).models) == 3
    assert len(exp.create_ensemble("r", replicas=3, run_settings=rs).models) == 3


def test_a_running_model_is_stopped(exp):
    model = exp.create_model("sleeper", exp.create_run_settings("sleep", exe_args="60"))
    exp.start(model, block=False)
    assert exp.get_status(model) == [status.STATUS_RUNNING]
    assert not exp.finished(model)
    exp.stop(model)
    assert exp.get_status(model) == [status.STATUS_CANCELLED]


def test_reconnect_from_a_second_process(exp):
    db = exp.create_database(port=0, db_identifier="shared")
    exp.start(db)
    code = textwrap.dedent(
        f"""
        import json
        from orc import Experiment
        e = Experiment("other", exp_path={str(exp.exp_path + "-other")!r})
        db = e.reconnect_orchestrator({db.checkpoint_file!r})
        print(json.dumps({{"active": db.is_active(), "addresses": db.get_address(), "id": db.db_identifier}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen == {"active": True, "addresses": db.get_address(), "id": "shared"}
    exp.stop(db)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "shared" in out.stderr


def test_bad_input_raises_clear_errors(exp, tmp_path):
    with pytest.raises(orc.SSConfigError, match="unknown launcher"):
        Experiment("bad", exp_path=str(tmp_path / "bad"), launcher="nosuch")
    with pytest.raises(orc.SSConfigError, match="db_nodes"):
        exp.create_database(db_nodes=0)
    with pytest.raises(orc.SSConfigError, match="perm_strategy"):
        exp.create_ensemble("e", params={"a": [1]}, run_settings=exp.create_run_settings("true"), perm_strategy="zigzag")
    with pytest.raises(orc.SSConfigError, match="walltime"):
        exp.create_batch_settings(time="an hour")
    missing = exp.create_model("ghost", exp.create_run_settings("/nonexistent/simulation"))
    with pytest.raises(orc.SSConfigError, match="was not found"):
        exp.start(missing)
    with pytest.raises(orc.OrcError, match="has not been launched"):
        exp.get_status(missing)
    with pytest.raises(orc.SSConfigError, match="exactly one"):
        missing.add_ml_model("m", "ONNX")
    with pytest.raises(orc.SSConfigError, match="device"):
        missing.add_script("s", script="def f(x): return x", device="TPU")
    # A colocated database's Redis settings get orc's checks too.
    missing.colocate_db_uds(port=5)
    with pytest.raises(orc.OrcError, match="managed by orc"):
        exp.start(missing_with_exe(exp, missing))
    # A setting orc manages itself is refused, with orc's words.
    db = exp.create_database(port=0, db_identifier="conf")
    db.set_db_conf("port", "1")
    with pytest.raises(orc.OrcError, match="managed by orc"):
        exp.start(db)
    # Two databases with one identifier.
    first = exp.create_database(port=0, db_identifier="twice")
    exp.start(first)
    with pytest.raises(orc.SSDBIDConflictError):
        exp.start(exp.create_database(port=0, db_identifier="twice"))
    exp.stop(first)


def test_a_running_database_changes_its_settings(exp):
    db = exp.create_database(port=0)
    db.set_max_memory("1gb")
    exp.start(db)
    # Applied to the running shards now (orc checks the value).
    db.set_eviction_strategy("allkeys-lru")
    with pytest.raises(orc.OrcError, match="maxmemory-policy"):
        db.set_eviction_strategy("sometimes")
    exp.stop(db)


MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "models", "linear.onnx")

USER = textwrap.dedent(
    """
    import os
    import numpy as np
    from smartredis import Client
    c = Client(logger_name="user")
    c.put_tensor("x", np.ones((1, 3), dtype=np.float32))
    c.run_model("lin", inputs=["x"], outputs=["y"])
    c.run_script("twice", "twice", ["x"], ["z"])
    print(os.environ["SSDB"], list(c.get_tensor("y")[0]), list(c.get_tensor("z")[0]))
    """
)


def twice(x):
    return x * 2


@pytest.mark.parametrize("transport", ["uds", "tcp"])
def test_a_colocated_model_finds_its_objects_loaded(exp, tmp_path, transport):
    (tmp_path / "user.py").write_text(USER)
    rs = exp.create_run_settings(sys.executable, exe_args=[str(tmp_path / "user.py")], env_vars={"SR_LOG_LEVEL": "quiet"})
    m = exp.create_model(f"colo_{transport}", rs)
    if transport == "uds":
        m.colocate_db_uds(db_cpus=1)
    else:
        m.colocate_db_tcp(port=free_port(), ifname="lo")
    m.add_ml_model("lin", "ONNX", model_path=MODEL)
    m.add_function("twice", function=twice)
    exp.start(m, block=True)
    with open(os.path.join(m.path, f"{m.name}.out")) as f:
        out = f.read()
    assert exp.get_status(m) == [status.STATUS_COMPLETED], out
    ssdb, y, z = out.split(" ", 1)[0], out.split("[")[1], out.split("[")[2]
    assert ssdb.startswith("unix://" if transport == "uds" else "127.0.0.1:"), out
    assert y.startswith("9.5, 11.0"), out
    assert z.startswith("2.0, 2.0, 2.0"), out


def test_objects_of_a_model_go_into_a_running_standard_database(exp, tmp_path):
    (tmp_path / "user.py").write_text(USER)
    db = exp.create_database(port=0, db_nodes=3)
    exp.start(db)
    rs = exp.create_run_settings(sys.executable, exe_args=[str(tmp_path / "user.py")], env_vars={"SR_LOG_LEVEL": "quiet"})
    m = exp.create_model("user", rs)
    m.add_ml_model("lin", "ONNX", model_path=MODEL)
    m.add_function("twice", function=twice)
    exp.start(m, block=True)
    assert exp.get_status(m) == [status.STATUS_COMPLETED]
    exp.stop(db)


def test_ctrl_c_in_a_driver_stops_what_it_started(tmp_path):
    driver = textwrap.dedent(
        f"""
        import json, sys
        from orc import Experiment
        exp = Experiment("cc", exp_path={str(tmp_path / "cc")!r})
        db = exp.create_database(port=0)
        exp.start(db)
        model = exp.create_model("sleeper", exp.create_run_settings("sleep", exe_args="120"))
        print(json.dumps(db._record), flush=True)
        exp.start(model, block=True)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    record = json.loads(p.stdout.readline())
    pids = [int(s["step"].split("@")[0]) for s in record["shards"]]
    sleeper = None
    deadline = time.time() + 20
    while sleeper is None and time.time() < deadline:
        mine = [int(x) for x in os.listdir("/proc") if x.isdigit() and _is_sleeper(int(x)) and _child_of(int(x), p.pid)]
        sleeper = mine[0] if mine else None
        time.sleep(0.1)
    assert sleeper is not None, "the model never started"
    p.send_signal(2)
    p.wait(timeout=30)
    assert p.returncode != 0
    deadline = time.time() + 10
    while (alive(sleeper) or any(alive(x) for x in pids)) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(sleeper), "the model outlived Ctrl-C"
    assert not any(alive(x) for x in pids), "the database outlived Ctrl-C"


def _child_of(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().split(") ")[1].split()[1])
        except OSError:
            return False
    return False


def _is_sleeper(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == b"120"


def missing_with_exe(exp, model):
    """`model` with an executable that exists."""
    model.run_settings = exp.create_run_settings("true")
    return model
