"""Every shell command in docs/ runs, so the guides cannot rot.

The rule for docs/*.md: each fenced ```sh block is a script that must exit 0 (bash, -e, -o pipefail),
run in a scratch folder that holds a link to examples/, with `python` being this interpreter. A line
`<!-- needs: X -->` just above a block names what it needs, and the test skips with the reason when
that is missing:

* `java17`: a JDK 17 (found as compare-jvm finds one), put first on PATH;
* `root`: root, and a huge-page pool no other program is using (the pool is restored afterwards);
* `hugepages=N`: N free huge pages;
* `unsanitized`: not under tools/sanitize, whose colour views at 1<<28 leave room for no heap of 256M;
* `chromium`: Debian's chromium (the report's screenshot), which .ci/run installs as root.

The scratch folder also has an empty docs/images/, where the docs' own pictures are made.

A ```text block right after a ```sh block (blank lines between them only) is its output as the
docs show it. For blocks with no needs, each of its lines must appear in the real output once numbers
and hex are set aside (every run has other PIDs, addresses and timings; the words must not change).
"""
import glob
import os
import pathlib
import re
import subprocess
import sys

import pytest

from miniheap import compare_jvm, hugepages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEEDS_RE = re.compile(r"<!--\s*needs:\s*(.*?)\s*-->")


class Block:
    def __init__(self, path, line, script, needs, output):
        self.path, self.line, self.script, self.needs, self.output = path, line, script, needs, output

    @property
    def id(self):
        return f"{os.path.basename(self.path)}:{self.line}"


def blocks():
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        lines = open(path).read().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```sh":
                start = i
                body = []
                i += 1
                while lines[i].strip() != "```":
                    body.append(lines[i])
                    i += 1
                before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
                needs = NEEDS_RE.search(before)
                j = i + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                output = None
                if j < len(lines) and lines[j].strip() == "```text":
                    k = j + 1
                    while lines[k].strip() != "```":
                        k += 1
                    output = lines[j + 1:k]
                found.append(Block(path, start + 1, "\n".join(body), needs.group(1).split() if needs else [],
                                   output))
            i += 1
    return found


BLOCKS = blocks()


def test_the_docs_have_shell_commands_to_run():
    assert len(BLOCKS) >= 15, [b.id for b in BLOCKS]
    exercises = [b for b in BLOCKS if b.path.endswith("exercises.md")]
    assert len(exercises) >= 8 and all(b.output for b in exercises)


def _prepare(block, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    preload = os.environ.get("LD_PRELOAD")
    # `python` is this interpreter; under tools/sanitize it needs its sanitizer back (java must not get it).
    sanitizer = "".join(f'export {k}="{os.environ[k]}"\n' for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")
                        if k in os.environ) if preload else ""
    (bin_dir / "python").write_text(f"#!/bin/sh\n{sanitizer}exec {sys.executable} \"$@\"\n")
    (bin_dir / "python").chmod(0o755)
    path = [str(bin_dir)]
    for need in block.needs:
        if need == "java17":
            jdks = [j for j in compare_jvm.find_jdks() if j.major == 17]
            if not jdks:
                pytest.skip(f"{block.id} needs a JDK 17: none found (JAVA_HOME, PATH, {':'.join(compare_jvm.JVM_DIRS)})")
            path.append(os.path.dirname(jdks[0].java))
        elif need == "root":
            if os.geteuid() != 0 or not os.access(hugepages.NR_HUGEPAGES, os.W_OK):
                pytest.skip(f"{block.id} needs root (it resizes the huge-page pool)")
            in_use = hugepages.total_pages() - hugepages.free_pages()
            if in_use:
                pytest.skip(f"{block.id} resizes the huge-page pool, and other programs hold {in_use} pages now")
            saved = hugepages.total_pages()
            monkeypatch.setattr(sys.modules[__name__], "_restore", lambda: hugepages.set_pool(saved))
        elif need.startswith("hugepages="):
            want = int(need.split("=")[1])
            if hugepages.free_pages() < want:
                pytest.skip(f"{block.id} needs {want} free huge pages: {hugepages.free_pages()} free "
                            f"(vm.nr_hugepages={hugepages.total_pages()})")
        elif need == "chromium":
            from .browser import INSTALL_HINT, find_chromium

            if find_chromium() is None:
                pytest.skip(f"{block.id} needs chromium: {INSTALL_HINT}")
        elif need == "unsanitized":
            if os.environ.get("MINIHEAP_SANITIZED") == "1":
                pytest.skip(f"{block.id} needs the colour views at ZGC's bits; under AddressSanitizer "
                            f"(tools/sanitize) they sit at 1<<28, below which no 256M heap fits")
        else:
            pytest.fail(f"{block.id}: unknown need {need!r} (known: java17, root, hugepages=N, unsanitized, "
                        f"chromium)")
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(ROOT, "src"), env.get("PYTHONPATH")])) \
        if not _installed() else env.get("PYTHONPATH", "")
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    (tmp_path / "docs" / "images").mkdir(parents=True)
    return env


def _installed():
    import miniheap

    return not os.path.abspath(miniheap.__file__).startswith(os.path.join(ROOT, "src"))


def _restore():
    pass


def _shape(line):
    """A line with its numbers and hex set aside, and its spacing folded."""
    line = re.sub(r"\b[0-9a-fx]*\d[0-9a-fx.]*\b", "N", line)
    return " ".join(line.split())


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_every_shell_command_in_the_docs_runs(block, tmp_path, monkeypatch):
    env = _prepare(block, tmp_path, monkeypatch)
    try:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.script], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
    finally:
        sys.modules[__name__]._restore()
    assert result.returncode == 0, f"{block.id} failed ({result.returncode}):\n{block.script}\n" \
                                   f"--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"
    if block.output and not block.needs:
        actual = {_shape(line) for line in result.stdout.splitlines()}
        missing = [line for line in block.output if line.strip() and _shape(line) not in actual]
        assert not missing, f"{block.id}: the documented output has lines the command no longer prints:\n" \
                            + "\n".join(missing) + f"\n--- it printed\n{result.stdout[-3000:]}"


def _numbered(lines, pattern):
    return [int(m[1]) for line in lines if (m := re.match(pattern, line))]


def test_numbered_sections_and_lists_count_up_without_repeats():
    """A guide that says "section 12" needs one section 12: numbered headings and the guides' list in
    README.md go 1, 2, 3, ... with no number twice (collector.md once had two sections 11)."""
    docs = pathlib.Path(__file__).resolve().parent.parent / "docs"
    for path in sorted(docs.glob("*.md")):
        lines = path.read_text().splitlines()
        for pattern in (r"## (\d+)\. ", r"(\d+)\. \["):
            numbers = _numbered(lines, pattern)
            if numbers:
                assert numbers == list(range(1, len(numbers) + 1)), (path.name, pattern, numbers)


def test_reading_the_demo_explains_every_section_the_demo_prints():
    root = pathlib.Path(__file__).resolve().parent.parent
    demo = (root / "src" / "miniheap" / "demo.py").read_text()
    printed = sorted({int(n) for n in re.findall(r"\bheading\((\d+),", demo)})
    text = (root / "docs" / "reading-the-demo.md").read_text()
    explained = _numbered(text.splitlines(), r"## (\d+)\. ")
    assert explained == printed
    words = {7: "seven", 8: "eight", 9: "nine", 10: "ten"}
    assert f"walks through {words[len(printed)]} sections" in text
