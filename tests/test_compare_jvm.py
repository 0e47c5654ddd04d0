"""`python -m miniheap compare-jvm`, and the JDK facts the docs state, pinned against real JDKs here.

Each test that needs a JDK skips, naming what is missing, when none is found (JAVA_HOME, PATH and the
usual JVM folders are searched, as compare-jvm does).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from miniheap import compare_jvm
from miniheap.maps import read_maps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZED = os.environ.get("MINIHEAP_SANITIZED") == "1"
# Under AddressSanitizer the views sit at 1<<28..., below 1<<28 the heap must fit (tools/sanitize).
HEAP = "128M" if os.environ.get("MINIHEAP_COLOR_BITS") == "28" else "256M"

_jdks = None


def jdks():
    global _jdks
    if _jdks is None:
        _jdks = compare_jvm.find_jdks()
    return _jdks


def jdk(predicate, what):
    found = [j for j in jdks() if predicate(j)]
    if not found:
        seen = ", ".join(f"JDK {j.major}" for j in jdks()) or "no JDK at all"
        pytest.skip(f"needs {what}; found {seen} (JAVA_HOME, PATH, {':'.join(compare_jvm.JVM_DIRS)})")
    return sorted(found, key=lambda j: abs(j.major - 17))[0]


def jdk17():
    return jdk(lambda j: j.major == 17, "a JDK 17 (java with -XX:+UseZGC, multi-mapped)")


def smaps_views(pid, views):
    """Rss, Pss of the smaps entries inside each (base, extent): read here, independently."""
    bases = [base for base, _ in views]
    totals = {b: [0, 0] for b in bases}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
            if head:
                start = int(head[1], 16)
                current = next((b for b, extent in views if b <= start < b + extent), None)
            elif current is not None and line.startswith(("Rss:", "Pss:")):
                totals[current][line.startswith("Pss:")] += int(line.split()[1]) * 1024
    return [tuple(totals[b]) for b in bases]


def memfd_blocks(pid, name):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if name in os.readlink(path):
                return os.stat(path).st_blocks * 512
        except OSError:
            continue
    return None


def test_compare_jvm_figures_match_proc_read_independently():
    jdk17()
    p = subprocess.Popen([sys.executable, "-m", "miniheap", "compare-jvm", "--heap-size", HEAP, "--work", "48",
                          "--figures", "--wait"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        text = []
        for line in p.stdout:
            text.append(line)
            if line.startswith("figures "):
                columns = json.loads(line[len("figures "):])
                break
        else:
            pytest.fail("".join(text)[-2000:] + p.stderr.read()[-2000:])
        jdk_side, mine = columns[0], columns[1]
        assert mine["pid"] == p.pid and jdk_side["pid"] != p.pid
        for side, name in ((jdk_side, "memfd:java_heap"), (mine, "memfd:miniheap")):
            pid, bases = side["pid"], [v["base"] for v in side["views"]]
            lines = [m for m in read_maps(pid) if name in m.path]
            assert len(bases) == 3 and len(lines) == sum(v["mappings"] for v in side["views"])
            figures = smaps_views(pid, [(v["base"], v["extent"]) for v in side["views"]])
            for v, (rss, pss) in zip(side["views"], figures):
                # The JVM's threads may touch or drop a page meanwhile: allow 4 MiB per view.
                assert abs(v["rss"] - rss) <= 4 << 20 and abs(v["pss"] - pss) <= 4 << 20, (side["label"], v, rss, pss)
            assert memfd_blocks(pid, name) == side["backing"]
            size = int(HEAP[:-1]) << 20
            assert side["backing"] == size  # pre-touched: -Xms = -Xmx, pretouch = true
            assert side["views_rss"] / side["views_pss"] >= 2.5  # RSS about three times PSS
            assert abs(side["views_pss"] - size) <= 4 << 20
        assert [v["reserved"] for v in mine["views"]] == [int(HEAP[:-1]) << 20] * 3
        # both sides log concurrent cycles (miniheap's coloured heap is its zgc collector); its GC log
        # section used to be empty, looking for serial's "Pause" lines
        for side in (jdk_side, mine):
            assert any("Garbage Collection (" in line for line in side["gc"]), (side["label"], side["gc"])
        assert all(v["reserved"] >= 16 * (int(HEAP[:-1]) << 20) for v in jdk_side["views"])
        if not SANITIZED:
            assert [v["base"] for v in mine["views"]] == [v["base"] for v in jdk_side["views"]]
        if len(columns) == 3:  # a JDK 21+: generational ZGC, one view, RSS about PSS
            gen = columns[2]
            assert len(gen["views"]) == 1 and gen["views_rss"] / gen["views_pss"] < 1.2
            assert gen["coloured"] is False and jdk_side["coloured"] and mine["coloured"]
            row = next(line for line in text if line.startswith("view colour bits"))
            assert row.rstrip().endswith("none (low pointer bits)"), row  # its base is no colour bit
        p.stdin.write("\n")
        p.stdin.flush()
        rest = p.stdout.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, p.stderr.read()[-2000:]
    report = "".join(text) + rest
    assert "Differences, and why:" in report and "Address space per view" in report
    assert "GC log, JDK 17 ZGC" in report and "Garbage Collection" in report


def test_without_a_jdk_one_line_says_how_to_get_one_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH=str(tmp_path), MINIHEAP_JVM_DIRS=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "miniheap", "compare-jvm"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install openjdk-17-jdk-headless" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("java", ["/no/such/bin/java", "/bin/true"])
def test_a_java_that_is_not_a_jdk_is_named_in_one_line(java):
    result = subprocess.run([sys.executable, "-m", "miniheap", "compare-jvm", "--java", java], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and result.stdout == "", result.stderr
    assert lines[0].startswith(f"compare-jvm: --java {java}: "), lines[0]
    assert ("no such program" if java.startswith("/no/") else "not a JDK's java launcher") in lines[0]


def test_the_generational_column_shows_no_colour_bits():
    """Generational ZGC keeps the colour in the pointer's low bits: the bit of its heap's base is no colour."""
    from types import SimpleNamespace

    def figures(label, bases, coloured):
        views = [{"bit": b.bit_length() - 1, "base": b, "mappings": 1, "reserved": 4 << 30, "offsets": [(0, 0)],
                  "rss": 1, "pss": 1, "extent": 1} for b in bases]
        return SimpleNamespace(label=label, pid=1, views=views, memfd="/memfd:java_heap (deleted)",
                               rollup={}, views_rss=1, views_pss=1, backing=0, touched=0, offsets_equal=(1, 1),
                               coloured=coloured)

    table = compare_jvm.side_by_side([figures("JDK 17 ZGC", [1 << 42, 1 << 43, 1 << 44], True),
                                      figures("JDK 25 generational ZGC", [1 << 42], False)])
    row = next(line for line in table.splitlines() if line.startswith("view colour bits"))
    assert row.split()[-3:] == ["none", "(low", "pointer", "bits)"][-3:] and "42, 43, 44" in row, row


def test_jdks_are_found_through_java_home_and_the_jvm_folders(tmp_path):
    found = jdks()
    if not found:
        pytest.skip("no JDK installed to find")
    home = os.path.dirname(os.path.dirname(found[0].java))
    env = {"JAVA_HOME": home, "PATH": str(tmp_path), "MINIHEAP_JVM_DIRS": str(tmp_path)}
    assert compare_jvm.candidate_javas(env) == [found[0].java]
    env = {"PATH": str(tmp_path), "MINIHEAP_JVM_DIRS": os.path.dirname(home)}
    assert found[0].java in compare_jvm.candidate_javas(env)


def test_zgc_flags_follow_the_jdk_timeline():
    flags = lambda major, gen=False: compare_jvm.Jdk("java", major, "").zgc_flags(gen)  # noqa: E731
    assert flags(11) == ["-XX:+UnlockExperimentalVMOptions", "-XX:+UseZGC"]  # experimental before JDK 15
    assert flags(17) == ["-XX:+UseZGC"]
    assert flags(21, True) == ["-XX:+UseZGC", "-XX:+ZGenerational"]  # JEP 439: opt in on 21 and 22
    assert flags(23) == ["-XX:+UseZGC", "-XX:-ZGenerational"]  # JEP 474: generational by default
    assert flags(25, True) == ["-XX:+UseZGC"]
    assert list(compare_jvm.MULTI_MAPPED) == list(range(11, 24))  # JEP 490 removed it in JDK 24


# ------------------------------------------------------------------ facts pinned against real JDK 17 runs


def run_zgc(java, xmx, tmp_path):
    """Start ZGC with -Xmx and the init log; return (view bases from /proc/PID/maps, init log lines)."""
    source = tmp_path / "Wait.java"
    source.write_text("public class Wait { public static void main(String[] a) throws Exception {"
                      " System.out.println(\"ready\"); System.out.flush(); System.in.read(); } }")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    p = subprocess.Popen([java.java, "-XX:+UseZGC", f"-Xmx{xmx}", "-Xlog:gc+init", str(source)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        log = []
        for line in p.stdout:
            if line.strip() == "ready":
                break
            log.append(line)
        bases = sorted({1 << (m.start.bit_length() - 1) for m in read_maps(p.pid) if "java_heap" in m.path})
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stdin.close()
    return bases, "".join(log)


def test_jdk17_views_at_256m_sit_at_bits_42_to_44_like_miniheaps_default(tmp_path):
    from miniheap.config import HeapConfig

    bases, log = run_zgc(jdk17(), "256m", tmp_path)
    assert bases == [0x40000000000, 0x80000000000, 0x100000000000]  # 4T, 8T, 16T
    assert "Address Space Size: 4096M x 3" in log  # 16 x the maximum heap, per view
    assert list(HeapConfig().color_view_bases) == bases


def test_jdk17_views_at_1t_sit_at_bits_44_to_46(tmp_path):
    from miniheap.config import HeapConfig

    bases, log = run_zgc(jdk17(), "1t", tmp_path)
    assert bases == [0x100000000000, 0x200000000000, 0x400000000000]  # 16T, 32T, 64T
    assert "Address Space Size: 16777216M x 3" in log  # 16T per view: three of them fill 48T of 128T
    assert list(HeapConfig(color_bits=44).color_view_bases) == bases


def test_generational_zgc_maps_one_view(tmp_path):
    bases, _ = run_zgc(jdk(lambda j: j.major >= 23, "a JDK 23 or later (generational ZGC by default)"),
                       "256m", tmp_path)
    assert len(bases) == 1


def test_pretouched_heaps_larger_than_the_machine_are_refused_before_any_jvm_starts():
    from miniheap.memory import available_bytes

    size = f"{(available_bytes() >> 30) // 3 + 8}G"
    result = subprocess.run([sys.executable, "-m", "miniheap", "compare-jvm", "--heap-size", size], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "MemAvailable" in result.stderr and "--no-pretouch" in result.stderr


def test_the_java_program_counts_the_demo_workloads_sizes():
    """LiveSet.java and the demo's workload make the same objects for the same --work: the Java program
    counts each step in miniheap's object sizes, which change with the header (8 bytes now)."""
    from importlib import resources

    from miniheap.demo import object_bytes

    source = resources.files("miniheap").joinpath("java/LiveSet.java").read_text()
    sizes = dict(re.findall(r"\b(REQUEST_BYTES|SESSION_BYTES|ENTRY_BYTES) = (\d+)", source))
    assert {k: int(v) for k, v in sizes.items()} == {
        "REQUEST_BYTES": object_bytes(2, 48) + object_bytes(0, 32),
        "SESSION_BYTES": object_bytes(1, 96),
        "ENTRY_BYTES": 4 * object_bytes(1, 120)}
    for name in ("new Node(48)", "new Node(32)", "new Node(96)", "new Node(120)"):
        assert name in source  # the shapes those sizes are of


def test_a_terminal_sees_which_program_runs_while_nothing_is_printed_yet():
    """compare-jvm prints its report only once three programs have run: a status line on a terminal's
    standard error says which one runs, and the report on standard output has none of it."""
    import pty

    jdk17()
    main, child = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "miniheap", "compare-jvm", "--heap-size", HEAP, "--work", "8"],
                              stdout=subprocess.PIPE, stderr=child, text=True, timeout=300, cwd=ROOT,
                              env=dict(os.environ, MINIHEAP_PROGRESS_AFTER="0"))
        os.close(child)
        child = None
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if child is not None:
            os.close(child)
        os.close(main)
    terminal = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, terminal[-2000:]
    assert "compare-jvm: JDK 17 ZGC runs LiveSet.java" in terminal and "miniheap runs" in terminal
    assert terminal.rstrip(" ").endswith("\r\x1b[K"), repr(terminal[-200:])  # erased before the report
    assert "\x1b[K" not in done.stdout and "Differences, and why:" in done.stdout
