"""Numbers typed by a user are ASCII digits, everywhere the same way.

int() reads '١٢' (Arabic-Indic) as 12, ' 3' as 3 and '1_0' as 10, and refuses 4301 digits;
str.isdigit() takes '³', which int() refuses; float() takes 'nan', which every range check lets
through. CI met one of these by chance (`keyring remove home ³` crashed whenever the emulated
token's random serial had 8 characters). Here every reader of typed numbers is given all of them on
every run: a clear refusal (or the one ASCII reading), never a traceback or "unexpected failure".
"""

from __future__ import annotations

import subprocess

import click
import pytest

from _support import console_script, run_cli
from sealcodes._cli import COMMAND_MODULES, cli
from sealcodes._cli.util import FloatRange, IntRange
from sealcodes.numerals import MAX_NUMBER_DIGITS, ascii_decimal, ascii_int

#: text that is not a number of ASCII digits, though int() or float() or str.isdigit() say otherwise
NOT_NUMBERS = ["\u0661\u0662", "\u00b3", "\u0968", "1_0", " 3", "3 ", "+3", "-0", "3\n", "", "\uff13",
               "9" * (MAX_NUMBER_DIGITS + 1), "9" * 5000]
NOT_DECIMALS = NOT_NUMBERS + ["nan", "NaN", "inf", "-inf", "1e3", ".", "1.2.3", "\u0661.5", "0x10"]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_ascii_int_refuses_what_int_would_misread(text):
    assert ascii_int(text) is None


@pytest.mark.parametrize("text, number", [("0", 0), ("7", 7), ("0042", 42), ("9" * MAX_NUMBER_DIGITS,
                                                                                int("9" * MAX_NUMBER_DIGITS))])
def test_ascii_int_reads_ascii_digits(text, number):
    assert ascii_int(text) == number


@pytest.mark.parametrize("text", NOT_DECIMALS)
def test_ascii_decimal_refuses_nan_exponents_and_other_digits(text):
    assert ascii_decimal(text) is None


@pytest.mark.parametrize("text, number", [("2", 2.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("300", 300.0)])
def test_ascii_decimal_reads_ascii_decimals(text, number):
    assert ascii_decimal(text) == number


def _options(command, path):
    yield from ((path, param) for param in command.params)
    if isinstance(command, click.Group):
        for name in command.list_commands(None):
            yield from _options(command.get_command(None, name), f"{path} {name}")


def test_every_numeric_option_of_the_cli_reads_ascii_digits_only():
    """click's own INT, FLOAT, IntRange and FloatRange read whatever int() and float() read."""
    assert COMMAND_MODULES  # every command module is loaded by the walk
    loose = [f"{path} {param.name}" for path, param in _options(cli, "sealcodes")
             if isinstance(param.type, (click.types._NumberParamTypeBase, click.types._NumberRangeBase))
             and not isinstance(param.type, (IntRange, FloatRange))]
    assert loose == []
    numeric = [param for _, param in _options(cli, "sealcodes") if isinstance(param.type, (IntRange, FloatRange))]
    assert len(numeric) >= 15  # the walk did see the commands


@pytest.mark.parametrize("args", [
    ["generate", "site", "--count", "\u0661\u0662"],
    ["generate", "site", "--count", "1_0"],
    ["generate", "site", "--epoch", " 1"],
    ["generate", "site", "--wait", "nan"],
    ["generate", "site", "--wait", "\u0663"],
    ["enroll", "--device", "emulator", "--slot", "\u00b2"],
    ["keyring", "create", "home", "--threshold", "9" * 5000],
])
def test_typed_numbers_of_the_cli_are_refused_in_one_line(args):
    """Before: '١٢' was 12, '1_0' was 10, ' 1' was 1 and 'nan' seconds of waiting were taken."""
    result = run_cli(*args)
    assert result.returncode == 2 and "is not a number" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == \
        [line for line in result.stderr.splitlines() if "is not a number" in line]


@pytest.mark.parametrize("address", ["127.0.0.1:\u0663\u0665\u0669\u0666\u0663", "127.0.0.1: 35963", "127.0.0.1:35_963",
                                     "127.0.0.1:" + "9" * 5000, "127.0.0.1:\u00b3"])
def test_sealtoken_vpcd_port_is_ascii_digits(address, tmp_path):
    """sealtoken serves on the port it was given or refuses: int() read '٣٥٩٦٣' as 35963."""
    from sealboard.vpcd import parse_address

    with pytest.raises(ValueError, match="not a port number"):
        parse_address(address)
    assert parse_address("127.0.0.1:35963") == ("127.0.0.1", 35963)
    refused = run_sealtoken("serve", "--vpcd", address, "--state", str(tmp_path / "state"))
    assert refused.returncode == 1 and refused.stderr.startswith("sealtoken: not a port number")
    assert len(refused.stderr.splitlines()) == 1


@pytest.mark.parametrize("seconds", ["nan", "inf", "1_0", "\u0661"])
def test_sealtoken_connect_timeout_is_ascii_digits(seconds, tmp_path):
    refused = run_sealtoken("serve", "--connect-timeout", seconds, "--state", str(tmp_path / "state"))
    assert refused.returncode == 2 and "not a number of seconds" in refused.stderr
    assert "Traceback" not in refused.stderr


def run_sealtoken(*args):
    return subprocess.run([console_script("sealtoken"), *args], capture_output=True, text=True, timeout=30)
