#!/usr/bin/env python
"""Time wsolevaluation's MaxBoxAcc (V1) + MaxBoxAccV2 on several families of score maps: the community evaluator's
per-image, per-threshold loop (`maxboxacc_reference`, run once per version as the evaluator is) against the exact fast
path (`box_accuracy`, both versions in one pass) on the same maps; asserts identical curves for every family.

Families (224x224 float maps, seeded): `cam` CAM-like maps (`wsol_nb.synthetic.random_cams`: one object, 0-2
distractors, grid noise up to 0.03); `objects` 1-3 rotated Gaussian objects of similar size; `background` the same
on a smooth background gradient with low noise; `noise` CAM-like maps with heavy grid noise (up to 0.3); `grid7`,
`grid14`, `grid28` CAM-like maps from one grid size; `ddt` DDT-like maps with many small components (dozens of small
blobs of either sign on a 56-cell grid around one object); `flat` near-constant maps (100 + 0.001 x a CAM-like map,
so float32 rounding leaves plateaus); `step0.001` CAM-like maps at the evaluator library's default threshold step.

Per family, `--rounds` rounds each time the fast path, then the reference V1, then V2, so both paths see the same
machine load; the table keeps each path's fastest round (the machine's noise only ever adds time) and the range of
the rounds' own CPU ratios. The fast path's one-time start (numba compiling the kernels, or loading them from its
cache) is timed apart first.

Per family `wsol-eval` also runs on `--eval-maps` maps (the family's, cycled under new ids) and on its first 10,
written to a temporary .npz (as `MapWriter` writes them) with their GT boxes as wsolevaluation metadata (224x224
images), each in its own process. Its own reported seconds (reading + evaluation) beyond the first 10 maps, over the
fast path's on the same maps from memory in this process (the same default threads), show what the command adds per
map (the one-time start, numba loading its kernels, cancels out); its MaxBoxAcc and V2 must equal the fast path's.
`--no-eval` skips it.

    .venv/bin/python benchmarks/bench_maxboxacc.py [--n 200] [--families cam,objects,...] [--seed 0] [--threads N]
                                                   [--rounds 3] [--no-eval] [--eval-maps 2000]
"""
import argparse, os, platform, shutil, tempfile, time
from pathlib import Path
import numpy as np, cv2
from wsol_nb.metrics import maxboxacc_reference, box_accuracy
from wsol_nb.maxboxacc import _threads
from wsol_nb.synthetic import random_cams, _blob
from bench_eval import write_maps, run_eval

def _up(m, size=224): return cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)

def _box(cx, cy, sx, sy, th, f, size=224):
    "The 2-sigma box of a rotated Gaussian on the grid, in pixels (clipped, int)."
    hw, hh = 2*np.hypot(sx*np.cos(th), sy*np.sin(th)), 2*np.hypot(sx*np.sin(th), sy*np.cos(th))
    return np.clip(np.array([cx - hw, cy - hh, cx + hw, cy + hh]) * f, 0, size - 1).astype(np.int64)

def objects(n, seed, background=False, r=28):
    "1-3 rotated Gaussian objects of similar size (optionally on a smooth gradient with low noise); GT: their boxes."
    rng = np.random.default_rng(seed); maps, gts = np.empty((n, 224, 224), np.float32), []
    for i in range(n):
        k, s0 = int(rng.integers(1, 4)), rng.uniform(0.06, 0.14) * r
        m, g = np.zeros((r, r)), []
        for _ in range(k):
            cx, cy = rng.uniform(0.15, 0.85, 2) * r; sx, sy = s0 * rng.uniform(0.8, 1.25, 2); th = rng.uniform(0, np.pi)
            m += rng.uniform(0.8, 1.0) * _blob(r, cx, cy, sx, sy, th); g.append(_box(cx, cy, sx, sy, th, 224 / r))
        if background:
            yy, xx = (np.mgrid[0:r, 0:r] + 0.5) / r
            m += rng.uniform(0.1, 0.5) * (np.cos(rng.uniform(0, 2*np.pi)) * xx + np.sin(rng.uniform(0, 2*np.pi)) * yy)
            m += rng.normal(0, 0.01, m.shape)
        maps[i] = _up(m); gts.append(np.stack(g))
    return maps, gts

def ddt(n, seed, r=56):
    "DDT-like maps: one object and dozens of small blobs of either sign on a fine grid; GT: the object's box."
    rng = np.random.default_rng(seed); maps, gts = np.empty((n, 224, 224), np.float32), []
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * r; sx, sy = rng.uniform(0.1, 0.2, 2) * r; th = rng.uniform(0, np.pi)
        m = _blob(r, cx, cy, sx, sy, th)
        for _ in range(int(rng.integers(20, 80))):
            m += rng.uniform(-0.6, 0.6) * _blob(r, *rng.uniform(0, r, 2), *rng.uniform(0.4, 1.5, 2), rng.uniform(0, np.pi))
        maps[i] = _up(m); gts.append(_box(cx, cy, sx, sy, th, 224 / r)[None])
    return maps, gts

FAMILIES = {
    'cam': lambda n, s: random_cams(n, seed=s),
    'objects': lambda n, s: objects(n, s),
    'background': lambda n, s: objects(n, s, background=True),
    'noise': lambda n, s: random_cams(n, seed=s, noise=0.3),
    'grid7': lambda n, s: random_cams(n, seed=s, grids=(7,)),
    'grid14': lambda n, s: random_cams(n, seed=s, grids=(14,)),
    'grid28': lambda n, s: random_cams(n, seed=s, grids=(28,)),
    'ddt': lambda n, s: ddt(n, s),
    'flat': lambda n, s: (lambda m, g: ((np.float32(100) + np.float32(1e-3) * m).astype(np.float32), g))(*random_cams(n, seed=s)),
    'step0.001': lambda n, s: random_cams(n, seed=s),
}

def timed(f):
    "Result, wall seconds and CPU seconds (this process) of `f()`."
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c

def cpu_name():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or 'unknown'

def run(name, maps, gts, interval, nt, rounds):
    "Time one family side by side over `rounds` rounds; assert identical curves; the row of the table."
    st, fw, fc, rw, rc, first = {}, [], [], [], [], None
    for k in range(rounds):
        fast, *t0 = timed(lambda: box_accuracy(maps, gts, interval=interval, stats=st if k == 0 else None, threads=nt))
        r1, *t1 = timed(lambda: maxboxacc_reference(maps, gts, interval=interval))
        r2, *t2 = timed(lambda: maxboxacc_reference(maps, gts, interval=interval, multi_contour=True, deltas=(30, 50, 70)))
        assert np.array_equal(fast['curves_v1'][50], r1[50]), f'{name}: V1 curves differ'
        for d in (30, 50, 70): assert np.array_equal(fast['curves_v2'][d], r2[d]), f'{name}: V2 curves differ at delta {d}'
        first = first or fast
        assert all(np.array_equal(first[v], fast[v]) for v in ('iou_v1', 'iou_v2'))
        fw.append(t0[0]); fc.append(t0[1]); rw.append(t1[0] + t2[0]); rc.append(t1[1] + t2[1])
    return dict(family=name, n=len(maps), step=interval, levels=st['levels'], traced=st.get('traced', 0),
                ref_wall=min(rw), ref_cpu=min(rc), fast_wall=min(fw), fast_cpu=min(fc),
                cpu_ratios=[r / f for r, f in zip(rc, fc)], acc=(first['MaxBoxAcc'], first['MaxBoxAccV2']))

def eval_overhead(name, maps, gts, interval, n, small=10):
    """`wsol-eval`'s reported seconds on `n` maps (the family's, cycled under new ids, from a temporary .npz) and on its
    first `small` maps, and the fast path's on the same maps in memory; the marginal seconds of the maps beyond the
    first `small` (the one-time start, numba loading its kernels, cancels out), command over fast path."""
    def once(k):
        d = Path(tempfile.mkdtemp(prefix=f'bench_maxboxacc_{name}_'))
        try:
            npz, meta = write_maps(d, [f'val/{name}_{i:05d}.JPEG' for i in range(k)], maps, gts, maps.shape[-1])
            r = run_eval(d, npz, meta, interval)
        finally: shutil.rmtree(d, ignore_errors=True)
        ms, gs = np.resize(maps, (k,) + maps.shape[1:]), [gts[i % len(gts)] for i in range(k)]
        fast, w, _ = timed(lambda: box_accuracy(ms, gs, interval=interval))
        assert np.isclose(r['MaxBoxAcc'], fast['MaxBoxAcc']) and np.isclose(r['MaxBoxAccV2'], fast['MaxBoxAccV2']), \
            f"{name}: wsol-eval gives {r['MaxBoxAcc']} / {r['MaxBoxAccV2']}, the fast path {fast['MaxBoxAcc']} / {fast['MaxBoxAccV2']}"
        return r['total'], w
    (e0, f0), (e1, f1) = once(small), once(n)
    return e1, f1, e0, (e1 - e0) / max(f1 - f0, 1e-9)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=200, help='maps per family (step0.001: a fifth of them)')
    ap.add_argument('--families', default=','.join(FAMILIES), help='comma-separated families to run')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help='CPU threads of the fast path (default: the CPUs available, at most 8)')
    ap.add_argument('--rounds', type=int, default=3, help='rounds per family; each path keeps its fastest (default: 3)')
    ap.add_argument('--no-eval', action='store_true', help='do not run wsol-eval on each family')
    ap.add_argument('--eval-maps', type=int, default=2000, help="maps of wsol-eval's run per family, the family's cycled (step0.001: a fifth) (default: 2000)")
    a = ap.parse_args()
    names = a.families.split(',')
    if bad := [f for f in names if f not in FAMILIES]: ap.error(f"unknown families {bad}; known: {', '.join(FAMILIES)}")
    nt = a.threads or _threads()
    print(f'{os.cpu_count()} CPUs ({cpu_name()}), load average {os.getloadavg()[0]:.1f}; fast path on {nt} threads')
    m, g = random_cams(4, seed=a.seed)
    _, sw, sc = timed(lambda: box_accuracy(m, g, threads=nt))
    print(f'fast path start (numba compile or cache load, 4 maps): wall {sw:.2f} s, CPU {sc:.2f} s')
    rows = []
    for name in names:
        step = 0.001 if name == 'step0.001' else 0.01
        maps, gts = FAMILIES[name](max(1, a.n // 5) if step == 0.001 else a.n, a.seed)
        r = run(name, maps, gts, step, nt, a.rounds); rows.append(r)
        r['eval'] = None if a.no_eval else eval_overhead(name, maps, gts, step, a.eval_maps if step == 0.01 else a.eval_maps // 5)
        ev = '' if r['eval'] is None else (f"; wsol-eval on {a.eval_maps if step == 0.01 else a.eval_maps // 5} maps {r['eval'][0]:.2f} s "
                                            f"reported (10 maps: {r['eval'][2]:.2f} s; fast path {r['eval'][1]:.2f} s): beyond its first 10 maps "
                                            f"{r['eval'][3]:.2f}x the fast path's seconds")
        print(f"{name:>10}: {r['n']} maps, identical curves; MaxBoxAcc {r['acc'][0]:.2f}, V2 {r['acc'][1]:.2f}; "
              f"reference {r['ref_wall']:.2f} s, fast {r['fast_wall']:.3f} s: {r['ref_wall']/r['fast_wall']:.1f}x wall, "
              f"{r['ref_cpu']/r['fast_cpu']:.1f}x CPU (rounds {min(r['cpu_ratios']):.1f}-{max(r['cpu_ratios']):.1f}x); "
              f"levels traced by OpenCV {r['traced']}/{r['levels']}{ev}", flush=True)
    print('\n| family | n | step | levels traced by OpenCV | reference V1 + V2, wall s (CPU s) | fast, wall s (CPU s) | speed-up wall | '
          'speed-up CPU (rounds) | wsol-eval reported s: 10 maps, all (fast path s) | wsol-eval / fast path, beyond 10 maps |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        ev = '- | -' if r['eval'] is None else f"{r['eval'][2]:.2f}, {r['eval'][0]:.2f} ({r['eval'][1]:.2f}) | **{r['eval'][3]:.2f}**"
        print(f"| {r['family']} | {r['n']} | {r['step']} | {r['traced']} of {r['levels']} | {r['ref_wall']:.2f} ({r['ref_cpu']:.2f}) | "
              f"{r['fast_wall']:.3f} ({r['fast_cpu']:.3f}) | **{r['ref_wall']/r['fast_wall']:.1f}x** | "
              f"**{r['ref_cpu']/r['fast_cpu']:.1f}x** ({min(r['cpu_ratios']):.1f}-{max(r['cpu_ratios']):.1f}) | {ev} |")
    w = [r['ref_wall'] / r['fast_wall'] for r in rows]; c = [r['ref_cpu'] / r['fast_cpu'] for r in rows]
    print(f'\nspeed-up from {min(w):.1f}x to {max(w):.1f}x wall, {min(c):.1f}x to {max(c):.1f}x CPU over {len(rows)} families; '
          f'load average now {os.getloadavg()[0]:.1f}')

if __name__ == '__main__': main()
