#!/usr/bin/env python
"""Memory and time of `wsol-eval` on score maps from an .npz: 1,000, 10,000, 50,000 maps.

For each count the benchmark writes CAM-like maps (`wsol_nb.synthetic.random_cams`: `--pool` distinct maps, repeated
under new ids up to the count) to a temporary .npz, and their GT boxes to a wsolevaluation metadata folder
(`wsol_nb.records.write_wsoleval`, image sizes included, so no image is needed), then runs
`wsol-eval --protocol wsoleval --maps MAPS.npz` in its own process and measures from outside: wall time, the peak
resident memory of that process (`os.wait4`'s ru_maxrss, the kernel's own high-water mark) and the command's own
reported seconds (`seconds_total`: reading + evaluation; `seconds`: the evaluation after reading). A first run on
`--startup` maps gives the command's start-up footprint, which the column "above start-up" subtracts.

Linux carries a process's peak RSS into the processes it starts (a child's `ru_maxrss` starts at its parent's peak), and
this script holds up to `--pool` maps in memory: each command is therefore started by a small Python launcher that
measures it (`_LAUNCH`), so the figure is the command's own.

  python benchmarks/bench_eval.py [--counts 1000,10000,50000] [--size 224] [--dtype float32] [--compress stored]

--compress stored writes the maps as `wsol_nb.io.MapWriter` (and so wsol-cam) does by default, uncompressed;
`deflate` as `MapWriter(compress=True)` does (and as it did by default before: such files are read too, inflating each
map).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from wsol_nb.synthetic import random_cams
from wsol_nb.records import Record, write_wsoleval
from wsol_nb.io import MapWriter, map_dtype, MAP_DTYPES

def eval_cmd() -> list:
    "The `wsol-eval` console script of this Python (or the same entry point through `-c`)."
    exe = Path(sys.executable).parent/'wsol-eval'
    return [str(exe)] if exe.exists() else [sys.executable, '-c', 'from wsol_nb.cli import eval_cli; eval_cli()']

def write_maps(d:Path, ids:list, maps, gts, size:int, dtype:str='float32', compress:str='stored') -> tuple:
    """Write maps (`maps[k % len(maps)]` under `ids[k]`) to d/maps.npz and their GT boxes (`gts`, same cycling) to a
    wsolevaluation metadata folder d/meta, the images being `size` x `size`; returns (npz path, metadata folder)."""
    meta = write_wsoleval([Record(i, d/i, k % 1000, gts[k % len(gts)], (size, size)) for k, i in enumerate(ids)], d/'meta')
    with MapWriter(d/'maps.npz', dtype=map_dtype(dtype), compress=compress == 'deflate') as w:
        for k, i in enumerate(ids): w.add(i, maps[k % len(maps)])
    return d/'maps.npz', meta

def write_set(d:Path, n:int, size:int, dtype:str, compress:str, pool:int, seed:int=0) -> tuple:
    "Write `n` CAM-like maps (`pool` distinct ones, repeated) and their metadata to d; returns (npz path, metadata folder, seconds)."
    t = time.perf_counter()
    cams, gts = random_cams(min(n, pool), size=size, seed=seed)
    ids = [f'val/ILSVRC2012_val_{i + 1:08d}.JPEG' for i in range(n)]
    return (*write_maps(d, ids, cams, gts, size, dtype, compress), time.perf_counter() - t)

_LAUNCH = ("import os, subprocess, sys\n"   # started afresh, small: the command's peak RSS does not start at this script's
           "p = subprocess.Popen(sys.argv[1:]); _, st, ru = os.wait4(p.pid, 0)\n"
           "print(f'\\nbench_eval: exit {os.waitstatus_to_exitcode(st)} maxrss_kb {ru.ru_maxrss}')")

def run_eval(d:Path, maps:Path, meta:Path, interval:float) -> dict:
    "Run wsol-eval in its own process; wall seconds, peak RSS (MB) from the kernel, and its reported seconds."
    out = d/'eval.json'
    cmd = eval_cmd() + ['--data', str(d), '--metadata', str(meta), '--maps', str(maps), '--protocol', 'wsoleval',
                        '--interval', str(interval), '--json', str(out), '--quiet']
    t = time.perf_counter()
    p = subprocess.run([sys.executable, '-c', _LAUNCH] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    last = (p.stdout.strip().splitlines() or [''])[-1].split()
    if p.returncode != 0 or len(last) != 5 or last[2] != '0':
        raise SystemExit(f"wsol-eval failed ({' '.join(last[1:3]) or p.returncode}): {p.stderr.strip()[-2000:]}")
    r = json.loads(out.read_text())
    return dict(wall=wall, rss=int(last[4]) / 1024, total=r['seconds_total'], seconds=r['seconds'],
                MaxBoxAcc=r['MaxBoxAcc'], MaxBoxAccV2=r['MaxBoxAccV2'], n=r['n_images'])

def fmt(x): return '-' if x is None else f'{x:.0f}'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--counts', default='1000,10000,50000', help='comma-separated numbers of maps (default: 1000,10000,50000)')
    ap.add_argument('--size', type=int, default=224, help='side of the maps (default: 224)')
    ap.add_argument('--dtype', default='float32', choices=MAP_DTYPES, help='stored map dtype (default: float32)')
    ap.add_argument('--compress', default='stored', choices=('deflate', 'stored'), help="zip entries: 'stored' "
                    "(uncompressed, as MapWriter writes them by default) or 'deflate' (default: stored)")
    ap.add_argument('--pool', type=int, default=2000, help='distinct maps, repeated under new ids up to each count (default: 2000)')
    ap.add_argument('--interval', type=float, default=0.01, help='threshold step (default: 0.01)')
    ap.add_argument('--startup', type=int, default=10, help='maps of the start-up run (default: 10; 0: skip it)')
    ap.add_argument('--tmp', default=None, help='folder for the temporary files (default: the system temp folder)')
    ap.add_argument('--json', default=None, help='also write the rows to this JSON file')
    a = ap.parse_args(argv)
    counts = [int(c) for c in a.counts.split(',') if c.strip()]
    print(f"# bench_eval: {' '.join(eval_cmd())}, maps {a.size}x{a.size} {a.dtype} ({a.compress}), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows, base = [], None
    for n in ([a.startup] if a.startup else []) + counts:
        d = Path(tempfile.mkdtemp(prefix='bench_eval_', dir=a.tmp))
        try:
            maps, meta, tw = write_set(d, n, a.size, a.dtype, a.compress, a.pool)
            mb = maps.stat().st_size / 1e6
            r = run_eval(d, maps, meta, a.interval)
        finally: shutil.rmtree(d, ignore_errors=True)
        r.update(maps=n, npz_mb=mb, write=tw, dtype=a.dtype, size=a.size, compress=a.compress)
        if base is None and a.startup: base = r; print(f"start-up ({n} maps): peak RSS {r['rss']:.0f} MB, {r['wall']:.2f} s", flush=True); continue
        r['above'] = r['rss'] - base['rss'] if base else None
        rows.append(r)
        print(f"{n} maps: wall {r['wall']:.2f} s, reported {r['total']:.2f} s (evaluation {r['seconds']:.2f} s), peak RSS "
              f"{r['rss']:.0f} MB ({fmt(r['above'])} above start-up), .npz {mb:.0f} MB written in {tw:.1f} s", flush=True)
    print(f"\n| maps | dtype | .npz MB | wall s | reported s (evaluation s) | peak RSS MB | above start-up MB | KB per map | "
          f"MaxBoxAcc / V2 |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['maps']:,} | {r['dtype']} | {r['npz_mb']:.0f} | {r['wall']:.2f} | {r['total']:.2f} ({r['seconds']:.2f}) | "
              f"{r['rss']:.0f} | {fmt(r['above'])} | {fmt(r['above'] and r['above'] * 1e3 / r['maps'])} | {r['MaxBoxAcc']:.2f} / {r['MaxBoxAccV2']:.2f} |")
    if a.json: Path(a.json).write_text(json.dumps(dict(startup=base, rows=rows), indent=1))
    return rows

if __name__ == '__main__': main()
