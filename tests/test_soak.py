"""Soak (issue 4, part 5): 8 threads allocating, reallocating and freeing without pause, for
HEAPSNAP_SOAK_SECONDS (default 16; 300 for the long run), with a snapshot every second taken by
the program at a quiescent point and periodic snapshots of the tracer thread every 0.5 s in
parallel (HEAPSNAP_DIR, HEAPSNAP_INTERVAL).

tests/live/soak.c checks at each quiescent point that the traced memory and the snapshot's totals
equal its own count of live bytes and blocks, exactly.  This test then checks that the tracer's
memory stays bounded once the live set is stable (after a warm-up of 25% of the run): the tables
(hs_get_tracer_memory), the heap that is not the program's (what malloc handed out minus the
program's live bytes: the tracer's own allocations, libdw's, snapshots'), and the RSS.
"""
import os
import re
import subprocess
from pathlib import Path

from conftest import BUILD, clean_env

SOAK = BUILD / "live" / "soak"
HEAPSNAP = BUILD / "heapsnap"
SECONDS = float(os.environ.get("HEAPSNAP_SOAK_SECONDS", "16"))
THREADS = 8
INTERVAL = 0.5
# Growth allowed after the warm-up.  "heap" is what malloc handed out (mallinfo2) minus the
# program's live bytes and an average 16-byte chunk header per live block: the tracer's own
# allocations, libdw's, snapshots'.  glibc's per-thread caches of freed chunks would count as
# handed out and move it by hundreds of KB while they fill, so the program runs without them
# (GLIBC_TUNABLES); it then moves by about 3 KB between checks.  A tracer that kept 1000 bytes
# per snapshot would add 3 KB a second.  The churn of the live blocks moves the RSS by a few MB
# (fragmentation), whatever the tracer does.
TABLES_GROWTH = 16 * 1024
HEAP_GROWTH = 16 * 1024
RSS_GROWTH = 8 * 1024 * 1024

def base_of(window, key):
    return f"{min(r[key] for r in window):.0f}"


CHECK = re.compile(r"^check (\d+) t ([\d.]+) bytes (\d+) blocks (\d+) tracer (\d+) heap (\d+) "
                   r"snapshot_ms ([\d.]+) ops (\d+)$")


def test_soak(tmp):
    out = tmp / "out"
    out.mkdir(mode=0o700)
    r = subprocess.run([SOAK, str(SECONDS), str(THREADS), "1000"], capture_output=True,
                       text=True, timeout=SECONDS * 4 + 120,
                       env=clean_env(HEAPSNAP_FRAMES=16, HEAPSNAP_DIR=out,
                                     HEAPSNAP_INTERVAL=INTERVAL,
                                     GLIBC_TUNABLES="glibc.malloc.tcache_count=0"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert r.stdout.endswith("soak: ok\n") and r.stderr == ""
    rows = []
    for line in r.stdout.splitlines():
        m = CHECK.match(line)
        if m:
            n, t, b, k, tables, heap, ms, ops = (float(x) for x in m.groups())
            rows.append({"t": t, "bytes": b, "blocks": k, "tables": tables,
                         "heap": heap - b - 16 * k, "ms": ms, "ops": ops})
    assert len(rows) >= 0.9 * SECONDS, r.stdout[-3000:]       # a check every 1 s, plus its time

    # Growth is measured on the floor: the least value in a window just after the warm-up and in
    # the last window.  The tracer thread's snapshots run while the program's threads are parked
    # and hold a few hundred KB while they do: a peak, not a leak.  A leak raises the floor.
    warm = max(2, int(len(rows) * 0.25))
    w = max(2, len(rows) // 5)
    early, late = rows[warm:warm + w], rows[-w:]
    growth = {key: min(r[key] for r in late) - min(r[key] for r in early)
              for key in ("tables", "heap")}
    # The RSS from the tracer thread's timeline (every 100 ms), in the same windows.
    [d] = [p for p in out.iterdir() if p.is_dir()]
    timeline = [line.split("\t") for line in (d / "timeline.tsv").read_text().splitlines()[1:]]
    rss = [(float(t), int(r)) for t, _, _, r in timeline]
    assert len(rss) >= SECONDS * 5, len(rss)
    end = rss[-1][0]
    rss_early = [r for t, r in rss if end * 0.25 < t <= end * 0.45]
    rss_late = [r for t, r in rss if t > end * 0.8]
    growth["rss"] = min(rss_late) - min(rss_early)
    heaps = [r["heap"] for r in rows[warm:]]
    summary = (f"{len(rows)} checks, {rows[-1]['ops']:.0f} operations; growth of the floor from "
               f"checks {warm + 1}-{warm + w} to the last {w}: tables {base_of(early, 'tables')} "
               f"+{growth['tables']:.0f}, heap not the program's {base_of(early, 'heap')} "
               f"+{growth['heap']:.0f} (after warm-up {min(heaps):.0f}..{max(heaps):.0f}), rss "
               f"{min(rss_early)} +{growth['rss']} (after warm-up {min(rss_early + rss_late)}.."
               f"{max(r for t, r in rss if t > end * 0.25)}); snapshots at most "
               f"{max(x['ms'] for x in rows):.1f} ms")
    print(summary)
    assert growth["tables"] <= TABLES_GROWTH, summary
    assert growth["heap"] <= HEAP_GROWTH, summary
    assert growth["rss"] <= RSS_GROWTH, summary
    # The live set was stable: it is the churn of a fixed number of slots.
    blocks = [r["blocks"] for r in rows[warm:]]
    assert max(blocks) < 1.2 * min(blocks)

    # The tracer thread's periodic snapshots, taken meanwhile, are all there and all load.
    interval = sorted(d.glob("*-interval.hsnap"))
    assert len(interval) >= SECONDS / INTERVAL * 0.5, [p.name for p in interval]
    for p in interval:
        info = subprocess.run([HEAPSNAP, "info", p], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert re.search(r"not recorded\s+0 blocks, 0 bytes", info.stdout), info.stdout
    assert sorted(d.glob("*-final.hsnap"))
    log = d / "heapsnap.log"
    assert not log.exists(), log.read_text()
