"""What every table generator of scripts/oracle does with its output: format
it as `cargo fmt` would, then write it, or with `--check` compare it with
the committed file (the tests run the check, so a table is never stale)."""

import subprocess
import sys


def rustfmt(text):
    """The table as `cargo fmt` leaves it, so the committed file is both
    generated and formatted."""
    done = subprocess.run(["rustfmt", "--edition", "2021", "--emit", "stdout"],
                          input=text.encode(), capture_output=True, check=True)
    return done.stdout.decode()


def write_or_check(argv, usage, script, generate):
    """`script [--check] OUT.rs`: `generate()` gives the Rust text; returns
    the exit code."""
    check = "--check" in argv
    args = [a for a in argv[1:] if a != "--check"]
    if len(args) != 1:
        print(usage, file=sys.stderr)
        return 2
    text = rustfmt(generate())
    if check:
        with open(args[0], encoding="utf-8") as f:
            if f.read() != text:
                print(f"{args[0]} is stale: rerun scripts/oracle/{script}", file=sys.stderr)
                return 1
        return 0
    with open(args[0], "w", encoding="utf-8") as f:
        f.write(text)
    return 0
