"""make install honours PREFIX and DESTDIR, and the installed command finds its library."""
import subprocess

from conftest import ROOT, clean_env


def test_install_into_destdir(tmp):
    dest = tmp / "dest"
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"DESTDIR={dest}",
                        "PREFIX=/opt/hs"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    root = dest / "opt" / "hs"
    for f in ("bin/heapsnap", "lib/libheapsnap.so", "lib/libheapsnap-core.a",
              "include/heapsnap.h", "include/heapsnap-annotate.h", "lib/pkgconfig/heapsnap.pc",
              "share/man/man1/heapsnap.1"):
        assert (root / f).exists(), f
    assert "prefix=/opt/hs" in (root / "lib/pkgconfig/heapsnap.pc").read_text()
    out = tmp / "out"
    r = subprocess.run([root / "bin/heapsnap", "run", "-q", "-o", out, "--", "/bin/true"],
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    [d] = list(out.iterdir())
    assert [p.name for p in d.glob("*.hsnap")] == ["000001-final.hsnap"]
