"""Run the TorchScript models of make_models.py, as saved by torch 1.13 (MODELS_DIR/NAME.pt) and
as re-saved by another libtorch (OTHER_DIR/NAME.v2.pt), on the TORCH backend of the orc
database in $SSDB, and compare with the reference outputs. Used by scripts/torch2-backend.

    check_torch_models.py MODELS_DIR OTHER_DIR
"""
import os
import sys

import numpy as np
from smartredis import Client

models, other = sys.argv[1], sys.argv[2]
c = Client(cluster=False)
failed = 0
for line in open(os.path.join(models, "models.txt")):
    name, ins, outs, fmts = line.split()
    if "pt" not in fmts.split(","):
        continue
    x = np.fromfile(os.path.join(models, name + ".in.f32"), dtype=np.float32).reshape([int(d) for d in ins.split("x")])
    ref = np.fromfile(os.path.join(models, name + ".out.f32"), dtype=np.float32)
    for label, f in [("saved by torch 1.13", os.path.join(models, name + ".pt")), ("re-saved", os.path.join(other, name + ".v2.pt"))]:
        try:
            c.set_model_from_file(name, f, "TORCH", device="CPU")
            c.put_tensor("x", x)
            c.run_model(name, ["x"], ["y"])
            diff = float(np.abs(c.get_tensor("y").ravel() - ref).max() / max(1.0, np.abs(ref).max()))
            ok = diff < 1e-4
            failed += not ok
            print(f"{name:9} {label:20} {'ok' if ok else 'WRONG'}, max rel diff {diff:.1e}")
        except Exception as e:  # a model the backend cannot load: say so and go on
            failed += 1
            print(f"{name:9} {label:20} FAILED: {str(e).splitlines()[0][:200]}")
sys.exit(1 if failed else 0)
