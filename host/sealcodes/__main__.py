"""`sealcodes` as a command (the console script, and `python -m sealcodes`): the choices about the
whole process that the library and the click commands must not make, since they also run inside
other programs (and inside the test suite).

Garbage collection. A command is one short process, and most of the objects it ever makes are
made by its start-up (modules, classes, functions) and live until it exits. Python's cyclic
collector would scan them dozens of times while they are imported, and all of them once more at
exit: more time than a whole FIDO2 exchange over PC/SC (benchmarks/bench_generate.py). So no
collection runs while the CLI is imported, and what that made is frozen out of later collections
(gc.freeze); the collector runs as usual while the command runs (a long one, such as `verifier
serve`, included); at exit what is left is frozen too, so the collection at interpreter exit has
nothing to scan. No secret depends on the collector: secrets are wiped where they are used.
"""

import atexit
import gc


def main() -> None:
    gc.disable()
    try:
        from ._cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    atexit.register(gc.freeze)  # before the command registers its own: runs after them
    cli_main()


if __name__ == "__main__":
    main()
