"""A SmartSim tutorial driver ported to orc by changing one import.

SmartSim's "getting started" experiment: start a database, run an ensemble of simulations
that each write a tensor (here, the real SmartRedis client with key prefixing), run an
analysis that reads every member's tensor through its prefix, print the summary, stop.
The only change from SmartSim is the import: ``from orc import Experiment``.

    python examples/driver.py [--launcher local|slurm|auto] [--db-nodes 3] [--batch]
"""
import argparse
import os
import shutil
import sys
import tempfile

from orc import Experiment  # was: from smartsim import Experiment

parser = argparse.ArgumentParser()
parser.add_argument("--launcher", default="local")
parser.add_argument("--db-nodes", type=int, default=3)
parser.add_argument("--batch", action="store_true", help="the database as a batch job of its own")
args = parser.parse_args()

work = tempfile.mkdtemp(prefix="orc-driver-")
sim = os.path.join(work, "sim.py")
with open(sim, "w") as f:
    f.write(
        "import sys\n"
        "import numpy as np\n"
        "from smartredis import Client\n"
        "step = int(sys.argv[1].split('=')[1])\n"
        "Client(logger_name='sim').put_tensor('u', np.arange(8, dtype=np.float64) * step)\n"
    )
analysis = os.path.join(work, "analysis.py")
with open(analysis, "w") as f:
    f.write(
        "import os\n"
        "from smartredis import Client\n"
        "c = Client(logger_name='analysis')\n"
        "for src in os.environ['SSKEYIN'].split(','):\n"
        "    c.set_data_source(src)\n"
        "    print(src, 'mean', c.get_tensor('u').mean())\n"
    )

exp = Experiment("tutorial", exp_path=os.path.join(work, "tutorial"), launcher=args.launcher)
db = exp.create_database(port=0 if args.launcher == "local" else 6780, db_nodes=args.db_nodes, batch=args.batch, time="00:10:00")
exp.start(db)
print("database at", ", ".join(db.get_address()))

settings = exp.create_run_settings(sys.executable, exe_args=[sim], env_vars={"SR_LOG_LEVEL": "quiet"})
ensemble = exp.create_ensemble("sim", params={"step": [1, 2, 3, 4]}, run_settings=settings, params_as_args=["step"])
ensemble.enable_key_prefixing()
exp.generate(ensemble, overwrite=True)
exp.start(ensemble, block=True)

reader = exp.create_model("analysis", exp.create_run_settings(sys.executable, exe_args=[analysis], env_vars={"SR_LOG_LEVEL": "quiet"}))
for member in ensemble.models:
    reader.register_incoming_entity(member)
exp.start(reader, block=True)
with open(os.path.join(reader.path, "analysis.out")) as f:
    print(f.read(), end="")

print(exp.summary())
statuses = exp.get_status(ensemble, reader)
exp.stop(db)
shutil.rmtree(work, ignore_errors=True)
sys.exit(0 if all(s == "Completed" for s in statuses) else 1)
