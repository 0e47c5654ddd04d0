"""``python -m miniheap COMMAND [options]`` (or the ``miniheap`` console script).

Each command is a module with ``main(argv, prog=...)``; adding one is one line in COMMANDS.
"""
import importlib
import sys

from .cli import program_name, quiet_on_broken_pipe

# name: (module, one line of help)
COMMANDS = {
    "probe": ("miniheap.probe", "which memory backends work here, and why not"),
    "demo": ("miniheap.demo", "the teaching run (the same as python examples/gc_demo.py)"),
    "bench": ("miniheap.bench", "benchmarks beside the JDK, CPython and memcpy"),
    "tour": ("miniheap.tour", "a multi-mapped heap built one step at a time, each step checkable"),
    "verify-views": ("miniheap.verify_views", "a load that skips the barrier, caught by ZVerifyViews (SIGSEGV)"),
    "compare-jvm": ("miniheap.compare_jvm", "JDK ZGC and miniheap side by side: views, maps, RSS, PSS"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {program_name()} COMMAND [options]", "",
             "A miniature JVM-style heap: multi-mapped regions, memory backends, a copying collector.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", f"'{program_name()} COMMAND --help' describes a command's options."]
    return "\n".join(lines)


@quiet_on_broken_pipe
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv and argv[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"miniheap {version('miniheap')}")
        except PackageNotFoundError:
            print("miniheap (not installed: run from a checkout)")
        return 0
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    name = argv[0]
    if name not in COMMANDS:
        what = "option" if name.startswith("-") else "command"
        print(f"{program_name()}: unknown {what} {name!r}: choose a command from {', '.join(COMMANDS)} "
              f"(see {program_name()} --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(argv[1:], prog=program_name(name))


if __name__ == "__main__":
    sys.exit(main())
