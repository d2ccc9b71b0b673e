"""Make the hostile TorchScript archives from ../models/add.pt by rewriting its code:
each is what a client could send as a model. Run from this directory; no torch needed.

- reads_file.pt: forward reads /etc/passwd (torch.from_file)
- writes_file.pt: forward writes a file (torch.save)
- deep.pt: forward's expression nests 5000 brackets deep (would overflow libtorch's stack)
- ops_from_file.pt: forward reads a file through `ops.aten.from_file`, a spelling the
  pre-load text check does not know: refused after loading, from the compiled graph
"""
import zipfile

SRC = "../models/add.pt"
HEAD = """class Add(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  def forward(self: __torch__.Add,
    a: Tensor,
    b: Tensor) -> Tensor:
"""
BODIES = {
    "reads_file.pt": '    x = torch.from_file("/etc/passwd", None, 16, 0)\n    return torch.add(a, b)\n',
    "writes_file.pt": '    torch.save(a, "/tmp/orc-hostile-written")\n    return torch.add(a, b)\n',
    "ops_from_file.pt": '    x = ops.aten.from_file("/etc/passwd", None, 16, 0)\n    return torch.add(a, b)\n',
    "deep.pt": "    return " + "(" * 5000 + "torch.add(a, b)" + ")" * 5000 + "\n",
}

src = zipfile.ZipFile(SRC)
entries = [(i.filename, i.compress_type, src.read(i.filename)) for i in src.infolist()]
for name, body in BODIES.items():
    with zipfile.ZipFile(name, "w") as out:
        for filename, compress, data in entries:
            if filename.endswith("code/__torch__.py"):
                data = (HEAD + body).encode()
            out.writestr(filename, data, compress_type=compress)
