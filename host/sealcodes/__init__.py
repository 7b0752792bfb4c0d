"""sealcodes: recovery codes derived from a secret sealed in hardware.

The library never prints, prompts or imports click; the CLI lives in sealcodes._cli.
"""

__version__ = "0.1.0"
