# A script in the form SmartRedis users write (stored with AI.SCRIPTSET, run with
# AI.SCRIPTRUN): inputs are passed positionally; a List[Tensor] parameter takes the rest.


def sum_list(tensors: List[Tensor]):
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total
