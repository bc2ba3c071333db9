#!/usr/bin/env python
"""Time wsolevaluation's MaxBoxAcc (V1) + MaxBoxAccV2 at threshold step 0.01: the community evaluator's per-image,
per-threshold loop (`maxboxacc_reference`, run once per version as the evaluator is) against the exact fast path
(`box_accuracy`, both versions in one pass) on the same CAM-like maps; asserts identical numbers.

The maps go in blocks (200 by default); per block the fast path runs before and after the reference, and the times
add up over the blocks, so a change of machine load during the run weighs on both sides; the ratio uses the fast
path's mean. Its one-time start (numba compiling the kernels, or loading them from its cache) is timed apart on 4
maps first.

    .venv/bin/python benchmarks/bench_maxboxacc.py [--n 1000] [--noise 0.03] [--interval 0.01] [--seed 0] [--block 200] [--threads N]
"""
import argparse, os, platform, time
import numpy as np
from wsol_nb.metrics import maxboxacc_reference, box_accuracy
from wsol_nb.maxboxacc import _threads
from wsol_nb.synthetic import random_cams

def timed(f):
    "Result, wall seconds and CPU seconds (this process) of `f()`."
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c

def cpu_name():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or 'unknown'

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=1000, help='number of maps')
    ap.add_argument('--noise', type=float, default=0.03, help='max std of the grid noise of the maps')
    ap.add_argument('--distractors', type=int, default=2, help='max number of weaker blobs per map')
    ap.add_argument('--interval', type=float, default=0.01, help='threshold step')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--block', type=int, default=200, help='maps per interleaved block (0: all at once)')
    ap.add_argument('--threads', type=int, default=None, help='CPU threads of the fast path (default: the CPUs available, at most 8)')
    a = ap.parse_args()
    maps, gts = random_cams(a.n, seed=a.seed, noise=a.noise, distractors=(0, a.distractors))
    print(f'{a.n} CAM-like 224x224 maps (seed {a.seed}, noise {a.noise}, 0-{a.distractors} distractors), '
          f'threshold step {a.interval}; {os.cpu_count()} CPUs ({cpu_name()}), load average {os.getloadavg()[0]:.1f}')
    nt = a.threads or _threads()
    _, sw, sc = timed(lambda: box_accuracy(maps[:4], gts[:4], interval=a.interval, threads=nt))
    print(f'fast path start (numba compile or cache load, 4 maps): wall {sw:.2f} s, CPU {sc:.2f} s; {nt} threads')
    B, st, T = a.block or a.n, {}, np.zeros((4, 2))   # rows: fast before, reference V1, reference V2, fast after
    ratios = []
    for s in range(0, a.n, B):                         # interleaved blocks: both paths see the same machine load
        m, g = maps[s:s+B], gts[s:s+B]
        fast, *t0 = timed(lambda: box_accuracy(m, g, interval=a.interval, stats=st, threads=nt))
        r1, *t1 = timed(lambda: maxboxacc_reference(m, g, interval=a.interval))
        r2, *t2 = timed(lambda: maxboxacc_reference(m, g, interval=a.interval, multi_contour=True, deltas=(30, 50, 70)))
        again, *t3 = timed(lambda: box_accuracy(m, g, interval=a.interval, threads=nt))
        T += np.array([t0, t1, t2, t3]); ratios.append((t1[0] + t2[0]) / ((t0[0] + t3[0]) / 2))
        assert all(np.array_equal(fast[k], again[k]) for k in ('iou_v1', 'iou_v2'))
        assert np.array_equal(fast['curves_v1'][50], r1[50]), f'V1 curves differ (maps {s}-{s+len(m)-1})'
        for d in (30, 50, 70): assert np.array_equal(fast['curves_v2'][d], r2[d]), f'V2 curves differ at delta {d}'
    full = box_accuracy(maps, gts, interval=a.interval, threads=nt)
    print(f"identical in every block: all {len(full['thresholds'])}x4 curve points; all {a.n} maps: "
          f"MaxBoxAcc {full['MaxBoxAcc']:.2f}, MaxBoxAccV2 {full['MaxBoxAccV2']:.4f}")
    print(f"levels traced with cv2 by the fast path: {st['traced']}/{st['levels']} ({100*st['traced']/st['levels']:.2f}%)")
    (fw0, fc0), (w1, c1), (w2, c2), (fw1, fc1) = T
    fw, fc = (fw0 + fw1) / 2, (fc0 + fc1) / 2
    print(f'{"":24}{"wall s":>9}{"CPU s":>9}')
    for name, w, c in (('reference V1', w1, c1), ('reference V2', w2, c2), ('reference V1+V2', w1+w2, c1+c2),
                       ('fast V1+V2, before', fw0, fc0), ('fast V1+V2, after', fw1, fc1), ('fast V1+V2, mean', fw, fc)):
        print(f'{name:24}{w:9.2f}{c:9.2f}')
    print(f'speed-up (V1+V2 reference / fast mean): wall {(w1+w2)/fw:.1f}x, CPU {(c1+c2)/fc:.1f}x; '
          f'against the V2 run alone: wall {w2/fw:.1f}x, CPU {c2/fc:.1f}x; '
          f'per block of {B} (wall): {min(ratios):.1f}x to {max(ratios):.1f}x')

if __name__ == '__main__': main()
