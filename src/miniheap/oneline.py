"""Command-line parsing whose usage errors are one line: what was wrong, and where the options are listed.

argparse prints the whole usage block (a dozen lines for the demo's flags) before its error. A person
who typed ``--work abc`` needs the one line that names the flag and the value; ``--help`` has the rest.
"""
import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        raise SystemExit(2)
