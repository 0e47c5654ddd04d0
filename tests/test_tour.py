"""`python -m miniheap tour`: every step's figures checked against /proc read by this test, while the
tour waits at that step."""
import json
import os
import re
import subprocess
import sys

from .hugepool import small_pool  # noqa: F401  (a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The system's tools run without the sanitizer tools/sanitize preloads into Python (ps deadlocks under it).
TOOLS_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
SIZE = 64 << 20
STEPS = ["reserve", "create the backing", "map view 1", "map views 2 and 3", "write through one view",
         "touch every page through all three views", "raw 64-bit value", "a collection",
         "one view, the colour in the pointer's low bits", "verify-views", "huge pages", "close"]


def tour(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "miniheap", "tour", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def smaps_of(pid):
    """Rss and Pss (bytes) of each smaps entry, keyed by its start address: read here, not by miniheap."""
    entries, current = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if head:
                current = entries.setdefault(int(head[1], 16), {"end": int(head[2], 16)})
            elif current is not None and line.startswith(("Rss:", "Pss:")):
                name, value = line.split(":")
                current[name] = int(value.split()[0]) * 1024
    return entries


def view_figures(pid, start, length):
    rss = pss = 0
    for addr, e in smaps_of(pid).items():
        if start <= addr < start + length:
            rss, pss = rss + e.get("Rss", 0), pss + e.get("Pss", 0)
    return rss, pss


def test_tour_runs_through_without_pausing():
    p = tour("--no-pause")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    headings = re.findall(r"^Step (\d+)/12: (.*)$", out, re.M)
    assert [int(n) for n, _ in headings] == list(range(1, 13))
    for (_, title), word in zip(headings, STEPS):
        assert word in title, (title, word)
    assert out.count("Check it yourself") == 12
    assert "nothing is left" in out and "Traceback" not in err


def test_every_figure_matches_proc_read_while_the_tour_waits():
    p = tour("--figures", stdin=subprocess.PIPE)
    steps, commands = {}, []
    try:
        for line in p.stdout:
            if line.startswith("  $ "):
                commands.append(line[4:].rstrip("\n"))
            if not line.startswith("figures "):
                continue
            for command in commands:  # every command the step printed works, run here while it waits
                # (the tour's own commands run this interpreter, which under tools/sanitize needs its
                # sanitizer preloaded; the system's tools must not get it)
                ours = command.split()[0] in ("python", sys.executable)
                ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                                     env=os.environ if ours else TOOLS_ENV)
                assert ran.returncode == 0 or ran.stdout.strip() == "0", (command, ran.stderr)
                assert ran.stdout.strip(), command
                if "Rss|Pss" in command:
                    assert "Rss:" in ran.stdout and "Pss:" in ran.stdout, (command, ran.stdout)
            commands.clear()
            fig = json.loads(line[len("figures "):])
            pid, number = fig["pid"], fig["step"]
            assert pid == p.pid
            steps[number] = fig
            for v in fig.get("views", []):  # each view's figures: the smaps entries inside it, read now
                assert view_figures(pid, v["start"], v["length"]) == (v["rss"], v["pss"]), (number, v)
            if "rss" in fig:
                ps = int(subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True,
                                        env=TOOLS_ENV, timeout=30).stdout) * 1024
                assert abs(ps - fig["rss"]) <= 2 << 20, (number, ps, fig["rss"])
            if number == 1:
                with open(f"/proc/{pid}/maps") as f:
                    reserved = [line for line in f if int(line.split("-")[0], 16) in fig["reservations"]]
                assert len(reserved) == 3 and all(" ---p " in line for line in reserved), reserved
            if number == 6:  # touched through all three views: RSS triples, PSS does not
                rss = [view_figures(pid, v["start"], v["length"]) for v in fig["views"]]
                assert [r for r, _ in rss] == [SIZE] * 3
                assert abs(sum(p_ for _, p_ in rss) - SIZE) <= 16 << 10
                assert fig["backing"] == SIZE
            if number == 7:  # the healed field, read from outside through /proc/PID/mem
                with open(f"/proc/{pid}/mem", "rb") as mem:
                    mem.seek(fig["field"])
                    raw = int.from_bytes(mem.read(8), "little")
                assert raw == fig["healed"] != fig["stale"]
                assert (fig["stale_color"], fig["healed_color"]) != (None, None)
                assert fig["healed_color"] == "Remapped" and fig["stale_color"] in ("Marked0", "Marked1")
                # the step says objects moved: they did, and the healed field has the new address (a
                # lone sparse page is not worth relocating, so the tour spreads its objects out)
                assert fig["moved"] > 0 and fig["healed_offset"] != fig["stale_offset"], fig
            if number == 9:  # the same heap on one view (open, read here) and on three (closed before)
                one = [view_figures(pid, v["start"], v["length"]) for v in fig["views"]]
                assert one == [(SIZE, SIZE)]  # RSS = PSS, the whole pretouched heap once
                three = fig["three_views"]  # as the tour measured them; step 6 checks the same tripling here
                assert [v["rss"] for v in three] == [SIZE] * 3 and abs(sum(v["pss"] for v in three) - SIZE) <= 16 << 10
                assert fig["views"][0]["start"] == three[0]["start"]  # the same address: the heap base bit
                # the pointer, read back: address << 16 | one colour bit, the address inside the one view
                start = fig["views"][0]["start"]
                assert fig["pointer"] >> 16 == fig["address"] and start <= fig["address"] < start + SIZE
                assert bin(fig["pointer"] & 0xFFFF).count("1") == 1 and fig["pointer"] & 0x7000
                assert all(ns > 0 for ns in fig["barrier_ns"].values()) and len(fig["barrier_ns"]) == 4
            if number == 10:  # verify-views: the child's views at each flip, then its SIGSEGV
                assert fig["status"] == -11, fig
                closed = {"Marked0": "---s", "Marked1": "---s", "Remapped": "rw-s"}
                assert fig["listings"]["between cycles"] == closed, fig
                if "marking" in fig["listings"]:
                    assert sorted(fig["listings"]["marking"].values()) == ["---s", "---s", "rw-s"], fig
                    assert fig["listings"]["marking"]["Remapped"] == "---s", fig
            if number == 12:  # nothing left: read here, not taken from the tour
                with open(f"/proc/{pid}/maps") as f:
                    assert not [line for line in f if "memfd:miniheap" in line]
                assert not [fd for fd in os.listdir(f"/proc/{pid}/fd")
                            if "memfd:miniheap" in os.readlink(f"/proc/{pid}/fd/{fd}")]
                with open("/proc/sysvipc/shm") as f:
                    assert not [line for line in f.readlines()[1:] if line.split()[4] == str(pid)]
                assert (fig["maps"], fig["memfds"], fig["segments"]) == (0, 0, 0)
            p.stdin.write("\n")
            p.stdin.flush()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, p.stderr.read()[-2000:]
    assert sorted(steps) == list(range(1, 13))


def test_q_quits_and_closes_everything():
    p = tour(stdin=subprocess.PIPE)
    out, err = p.communicate("\n\n\nq\n", timeout=60)
    assert p.returncode == 0, err
    assert "Step 4/12" in out and "Step 5/12" not in out


def test_the_2017_backend_tour_leaves_no_segment():
    p = tour("--no-pause", "--backend", "shm-mremap")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    assert "shmget(IPC_PRIVATE" in out and "mremap(" in out and "nothing is left" in out


def test_bad_arguments_are_one_line():
    p = tour("--heap-size", "lots", "--no-pause")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1 and "lots" in err, err


def test_huge_page_step_faults_once_per_2mib(small_pool):
    small_pool(4)
    p = tour("--no-pause", "--figures")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    fig = [json.loads(line[8:]) for line in out.splitlines() if line.startswith("figures ")][10]
    assert fig["huge"] is True, out
    assert fig["hugetlb"] == 8 << 20
    assert fig["faults"] <= 4 + 4, fig  # 2048 writes of 4 KiB pages, 4 huge pages: about one fault each
    assert "one per 2 MiB page" in out


def test_huge_page_step_says_how_to_reserve_without_a_pool(small_pool):
    small_pool(0)
    p = tour("--no-pause")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    assert "skipped: the pool is too small" in out and "sysctl vm.nr_hugepages=" in out
    assert "needs 4 of them. A heap of 8M needs 4 huge pages" in out  # a sentence, not ". a heap"


def test_a_heap_larger_than_the_machine_is_refused_before_it_is_touched():
    from miniheap.memory import available_bytes

    size = f"{(available_bytes() >> 30) + 8}G"
    p = tour("--no-pause", "--heap-size", size)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1, err
    # (under tools/sanitize the colour views at 1<<28 refuse such a heap first, also in one line)
    assert ("MemAvailable" in err or "colour bit 28" in err) and "Step 1" not in out


def test_help_goes_to_stdout_and_a_closed_pipe_ends_the_tour_quietly():
    p = tour("--help")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and err == "" and out.startswith("usage: python -m miniheap tour")
    p = tour("--no-pause")  # read three lines, then close the pipe, as `| head -3` does
    lines = [p.stdout.readline() for _ in range(3)]
    p.stdout.close()
    err = p.stderr.read()
    p.wait(timeout=60)
    assert len(lines) == 3 and "Traceback" not in err and "failed" not in err, err
    assert p.returncode == 141  # 128 + SIGPIPE, as a shell reports a process a closed pipe ended


def test_the_colour_marks_stand_under_the_colour_bits():
    from miniheap.tour import describe_pointer

    for bits in (42, 44, 28):
        for colour in range(3):
            value = 1 << (bits + colour) | 0x1000048
            lines = describe_pointer(value, bits).splitlines()
            binary_line, marks_line = lines[1], lines[2]
            digits = binary_line.rstrip().split()[-1]
            first = binary_line.index(digits)  # the column of bit 47
            column = {47 - i: first + i for i in range(len(digits))}
            carets = [i for i, ch in enumerate(marks_line) if ch == "^"]
            assert carets == [column[b] for b in (bits + 2, bits + 1, bits)], (bits, binary_line, marks_line)
            assert binary_line[column[bits + colour]] == "1" and digits.count("1") == 1


def test_an_output_in_a_missing_folder_is_refused_before_the_first_step(tmp_path):
    missing = tmp_path / "no" / "such"
    p = tour("--no-pause", "--html", str(missing / "tour.html"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and out == "", out[-500:]
    assert err.strip().splitlines() == [f"miniheap tour: --html {missing / 'tour.html'}: the folder {missing} "
                                        f"does not exist: create it or write elsewhere"], err


def test_the_gc_log_lines_stand_under_the_step_that_made_them():
    """Steps 7 and 8 print their collections' -Xlog:gc lines in their own text: none streams out before
    the step's heading (or after the Enter prompt of the step before)."""
    p = tour("--no-pause")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    lines = out.splitlines()
    heading = {int(m[1]): i for i, line in enumerate(lines) if (m := re.match(r"^Step (\d+)/12", line))}
    logged = [(i, line) for i, line in enumerate(lines) if re.match(r"^ *\[\d+\.\d{3}s\]\[info\]\[gc\] ", line)]
    assert logged and "Using The Z Garbage Collector" in logged[0][1]  # the tour's heap is coloured: zgc
    for i, line in logged:
        step = max(n for n, at in heading.items() if at < i)
        gc_id = re.search(r"GC\((\d+)\)", line)
        assert step == (7 if gc_id is None or int(gc_id[1]) < 2 else 8), (step, line)
