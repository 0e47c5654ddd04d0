"""``python -m miniheap COMMAND``: probe, demo, bench."""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"probe": "miniheap.probe", "demo": "miniheap.demo", "bench": "miniheap.bench"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: python -m miniheap {probe,demo,bench} [options]\n\n"
              "  probe   which memory backends work here, and why not\n"
              "  demo    the teaching run (same as examples/gc_demo.py)\n"
              "  bench   benchmarks beside the JDK, CPython and memcpy", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib

    module = importlib.import_module(commands[argv[0]])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
