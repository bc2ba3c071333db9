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

Per family the fast path runs before and after the two reference runs and its mean is used, so both paths see the
same machine load. The fast path's one-time start (numba compiling the kernels, or loading them from its cache) is
timed apart first.

    .venv/bin/python benchmarks/bench_maxboxacc.py [--n 200] [--families cam,objects,...] [--seed 0] [--threads N]
"""
import argparse, os, platform, time
import numpy as np, cv2
from wsol_nb.metrics import maxboxacc_reference, box_accuracy
from wsol_nb.maxboxacc import _threads
from wsol_nb.synthetic import random_cams, _blob

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

def run(name, maps, gts, interval, nt):
    "Time one family side by side; assert identical curves; the row of the table."
    st = {}
    fast, *t0 = timed(lambda: box_accuracy(maps, gts, interval=interval, stats=st, threads=nt))
    r1, *t1 = timed(lambda: maxboxacc_reference(maps, gts, interval=interval))
    r2, *t2 = timed(lambda: maxboxacc_reference(maps, gts, interval=interval, multi_contour=True, deltas=(30, 50, 70)))
    again, *t3 = timed(lambda: box_accuracy(maps, gts, interval=interval, threads=nt))
    assert all(np.array_equal(fast[k], again[k]) for k in ('iou_v1', 'iou_v2'))
    assert np.array_equal(fast['curves_v1'][50], r1[50]), f'{name}: V1 curves differ'
    for d in (30, 50, 70): assert np.array_equal(fast['curves_v2'][d], r2[d]), f'{name}: V2 curves differ at delta {d}'
    fw, fc = (t0[0] + t3[0]) / 2, (t0[1] + t3[1]) / 2
    rw, rc = t1[0] + t2[0], t1[1] + t2[1]
    return dict(family=name, n=len(maps), step=interval, levels=st['levels'], traced=st.get('traced', 0),
                ref_wall=rw, ref_cpu=rc, fast_wall=fw, fast_cpu=fc, acc=(fast['MaxBoxAcc'], fast['MaxBoxAccV2']))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=200, help='maps per family (step0.001: a fifth of them)')
    ap.add_argument('--families', default=','.join(FAMILIES), help='comma-separated families to run')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help='CPU threads of the fast path (default: the CPUs available, at most 8)')
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
        r = run(name, maps, gts, step, nt); rows.append(r)
        print(f"{name:>10}: {r['n']} maps, identical curves; MaxBoxAcc {r['acc'][0]:.2f}, V2 {r['acc'][1]:.2f}; "
              f"reference {r['ref_wall']:.2f} s, fast {r['fast_wall']:.3f} s: {r['ref_wall']/r['fast_wall']:.1f}x wall, "
              f"{r['ref_cpu']/r['fast_cpu']:.1f}x CPU; levels traced by OpenCV {r['traced']}/{r['levels']}", flush=True)
    print('\n| family | n | step | levels traced by OpenCV | reference V1 + V2, wall s (CPU s) | fast, wall s (CPU s) | speed-up wall | speed-up CPU |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['family']} | {r['n']} | {r['step']} | {r['traced']} of {r['levels']} | {r['ref_wall']:.2f} ({r['ref_cpu']:.2f}) | "
              f"{r['fast_wall']:.3f} ({r['fast_cpu']:.3f}) | **{r['ref_wall']/r['fast_wall']:.1f}x** | {r['ref_cpu']/r['fast_cpu']:.1f}x |")
    w = [r['ref_wall'] / r['fast_wall'] for r in rows]
    print(f'\nspeed-up (wall) from {min(w):.1f}x to {max(w):.1f}x over {len(rows)} families; load average now {os.getloadavg()[0]:.1f}')

if __name__ == '__main__': main()
