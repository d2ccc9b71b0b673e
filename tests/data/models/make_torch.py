"""Generate the TorchScript fixtures used by the orc-ai tests.

Run with Debian's torch (the pyenv python cannot import it):
    /usr/bin/python3 make_torch.py
The generated files are committed, so tests never need this script.
"""
from typing import Tuple

import torch


class Add(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Linear(torch.nn.Module):
    """y = x @ W + B with the same W and B as linear.onnx."""

    def __init__(self):
        super().__init__()
        self.w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        self.b = torch.tensor([0.5, -1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


class TwoOut(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return a + b, a * b


torch.jit.script(Add()).save("add.pt")
torch.jit.script(Linear()).save("lin.pt")
torch.jit.script(TwoOut()).save("two_out.pt")
print("wrote add.pt lin.pt two_out.pt")
