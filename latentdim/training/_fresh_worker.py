"""A worker process of the fresh verification (``python -m latentdim.training._fresh_worker``,
started by :class:`latentdim.training.verify.FreshWorkers`; nothing imports this module).

It reads from stdin, as pickles, the (train, held-out) tensors once and then jobs ``(k, cfg,
seed)``, and answers each on stdout with ``("ok", error)`` or ``("error", traceback)``, training
on one CPU thread (the numbers of :func:`~latentdim.training.verify.fresh_error` on one thread in
the estimate's own process). It exits at the end of its input.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print goes to stderr, not into the answers
    import torch

    from latentdim.training.verify import fresh_error

    torch.set_num_threads(1)
    jobs = sys.stdin.buffer
    try:
        train, held_out = pickle.load(jobs)
    except EOFError:
        return
    while True:
        try:
            k, cfg, seed = pickle.load(jobs)
        except EOFError:
            return
        try:
            answer: tuple = ("ok", fresh_error(train, held_out, k, cfg, seed))
        except Exception:  # noqa: BLE001 - the estimate reports it
            answer = ("error", traceback.format_exc())
        pickle.dump(answer, answers)
        answers.flush()


if __name__ == "__main__":
    main()
