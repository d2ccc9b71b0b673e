# TorchScript used by the orc-ai script tests (AI.SCRIPTSTORE with ENTRY_POINTS, and the
# deprecated AI.SCRIPTSET that SmartRedis sends). List and Tensor are TorchScript built-ins.

def scale(tensors: List[Tensor], keys: List[str], args: List[str]):
    factor = float(args[0])
    return tensors[0] * factor


def sum_all(tensors: List[Tensor], keys: List[str], args: List[str]):
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


def split_halves(tensors: List[Tensor], keys: List[str], args: List[str]):
    n = tensors[0].shape[0] // 2
    return tensors[0][:n], tensors[0][n:]


def legacy_add(a, b):
    return a + b


def raises(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0].reshape(7, 11)
