"""`sealcodes` as a command (the console script, and `python -m sealcodes`): the choices about the
whole process that the library and the click commands must not make, since they also run inside
other programs (and inside the test suite).

Garbage collection. Most objects a command makes are made by importing the CLI (modules,
classes, functions) and live until it exits. They are imported with the cyclic collector off and
then frozen (gc.freeze): later collections, the one at interpreter exit included, no longer scan
them. The collector then runs as usual while the command runs (a long one such as `verifier
serve` included), so what the command leaves in reference cycles is still collected and its
finalizers run. The few cycles the imports leave as garbage stay until exit. No secret depends on
the collector: secrets are wiped where they are used.
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from ._cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
