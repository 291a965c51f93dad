"""A user's own program for the SIIT trainer's tests (``--program FILE.py:NAME``): whether each
token equals the first, over two tokens and three positions (8 inputs)."""

from models.tracr import RaspProgram


def _build():
    from tracr.rasp import rasp

    first = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == 0).named("first_sel")
    first_tok = rasp.Aggregate(first, rasp.tokens).named("first_tok")
    return rasp.SequenceMap(lambda x, y: int(x == y), rasp.tokens, first_tok).named("same")


TINY = RaspProgram("tiny_same", ("a", "b"), 3, True, "same", _build)
NOT_A_PROGRAM = 3
