"""Latency of the CAM explorer (wsol_nb.explorer) and the live monitor (wsol_nb.monitor).

Targets on a 2-core CPU: a threshold-slider move -> redraw (boxes, IoU, overlay PNG at display size, curve marker, readout)
<= 100 ms at p90; a method switch -> first progress shown <= 200 ms; `CamExplorer()` shown <= 2 s after its cell runs;
the monitor redraws at least every 2 s during a run; the dataset curve for 1,000 cached maps <= 1 s.
Run: .venv/bin/python benchmarks/bench_widgets.py [--n 1000] [--threads 2] [--monitor-steps 30] [--no-monitor]
"""
import argparse, os, platform, tempfile, time
from pathlib import Path
import numpy as np, torch, cv2
from wsol_nb.explorer import CamExplorer
from wsol_nb.scan import small_maps

def cam_like(n, S=224, seed=0):
    "CAM-like maps: a 7x7 grid of smooth random activations plus a blob near the object, upsampled bilinearly to S."
    rng = np.random.default_rng(seed)
    gts, maps = [], np.zeros((n, S, S), np.float16)
    yy, xx = np.mgrid[0:7, 0:7] + .5
    for i in range(n):
        w, h = rng.integers(50, 180, 2); x1, y1 = rng.integers(0, S-w), rng.integers(0, S-h)
        gts.append(np.array([[x1, y1, x1+w, y1+h]], np.float32))
        cx, cy = (x1+w/2)/S*7 + rng.normal(0, .5), (y1+h/2)/S*7 + rng.normal(0, .5)
        g = np.exp(-.5*(((xx-cx)/(w/S*7/3))**2 + ((yy-cy)/(h/S*7/3))**2)) + .3*rng.random((7, 7))
        m = cv2.resize(g.astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR)
        maps[i] = (m - m.min())/(m.max() - m.min())
    return maps, gts

class FakeDS:
    "n items of dict(image, boxes, label, id) at 224 px, without decoding files."
    def __init__(self, gts, S=224):
        self.gts, self.S, self.classes = gts, S, ['a', 'b']
        self.im = (np.random.default_rng(1).random((3, S, S))*255).astype(np.uint8)
    def __len__(self): return len(self.gts)
    def __getitem__(self, i): return dict(image=self.im, boxes=self.gts[i], label=i % 2, id=f'img{i:04d}')

def ms(ts): return f"median {np.median(ts)*1e3:.1f} ms, p90 {np.percentile(ts, 90)*1e3:.1f} ms, max {np.max(ts)*1e3:.1f} ms"

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--n', type=int, default=1000); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--moves', type=int, default=60); ap.add_argument('--monitor-steps', type=int, default=30)
    ap.add_argument('--no-monitor', action='store_true'); a = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(a.threads); cv2.setNumThreads(a.threads)
    print(f"# bench_widgets: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"load average {os.getloadavg()[0]:.1f}, torch threads {a.threads}")
    maps, gts = cam_like(a.n)
    prov = {'CAM': lambda c: maps}   # stands in for cached CAMs: the explorer's work after the maps exist is what is timed

    shown_at_once()
    ex = CamExplorer(FakeDS(gts), providers=prov, background=False)   # builds the cache, the first curve, the first redraw
    c = ex.cache
    ex.wait()
    def curve():
        t, c0 = time.perf_counter(), time.process_time(); ex.request(force=True); return time.perf_counter() - t, time.process_time() - c0
    r = [curve() for _ in range(5)]
    w, cp = [x[0] for x in r], [x[1] for x in r]
    print(f"dataset curve, {a.n} maps: GT-known@0.5 scan (41 thresholds, 56 px, largest component) + plot + redraw: wall {ms(w)}; "
          f"CPU time median {np.median(cp)*1e3:.0f} ms")
    bt = []
    for _ in range(3):
        c._boxacc.clear(); t = time.perf_counter(); c.boxacc('CAM'); bt.append(time.perf_counter() - t)
    print(f"  exact BoxAcc curves (wsol_nb.metrics.box_accuracy, 40 thresholds, 224 px; once per method, background thread): {ms(bt)}")
    t = time.perf_counter(); sm = small_maps(c.maps('CAM'), 56); t_small = time.perf_counter() - t
    print(f"  one-off per method: float16 cache -> 56 px maps {t_small*1e3:.0f} ms")

    t = time.perf_counter(); ex.w_rule.value = 'percentile'; t_rule = time.perf_counter() - t
    ex.w_rule.value = 'max_frac'
    vals = np.round(np.linspace(0.05, 0.95, a.moves), 2)
    tm = []
    for v in vals:
        t = time.perf_counter(); ex.w_value.value = float(v); tm.append(time.perf_counter() - t)
    print(f"slider move -> redraw (one 224 px image: boxes, IoU, overlay PNG, curve marker PNG, readout), {a.moves} moves: {ms(tm)}")
    ti = []
    for k in range(min(a.moves, len(ex.order)-1)):
        t = time.perf_counter(); ex.w_pos.value = k + 1; ti.append(time.perf_counter() - t)
    print(f"image slider move -> redraw: {ms(ti)}")
    print(f"threshold-rule change to percentile through the widget (GT-known re-scan, plot, redraw): {t_rule*1e3:.0f} ms")
    print(f"TARGET slider redraw p90 <= 100 ms: {np.percentile(tm, 90)*1e3:.1f} ms -> {'met' if np.percentile(tm, 90) <= .1 else 'MISSED'}")
    method_switch(FakeDS(gts), maps)
    if not a.no_monitor: monitor_run(a.monitor_steps)
    print(f"# load average at the end {os.getloadavg()[0]:.1f}; total {time.time()-t0:.0f} s")

def shown_at_once():
    "`CamExplorer()` as a newcomer types it (embedded data, bundled backbone, all methods): time until it can be displayed, and until its first maps."
    t = time.perf_counter(); ex = CamExplorer(); ex._repr_mimebundle_(); t_shown = time.perf_counter() - t
    ex.wait(); t_ready = time.perf_counter() - t
    print(f"CamExplorer() -> widget displayable: {t_shown*1e3:.0f} ms; first CAM maps and curve of {len(ex.cache)} images shown after {t_ready:.1f} s (background)")
    print(f"TARGET explorer shown <= 2 s: {t_shown:.2f} s -> {'met' if t_shown <= 2 else 'MISSED'}")

def method_switch(ds, maps, k=8):
    "Method switch -> progress bar shown (the setter returns with the bar drawn), on a provider that takes a while."
    def slow(c):
        for s in range(0, len(c), 100): time.sleep(0.02); c.report(min(s+100, len(c)), len(c))
        return maps
    ex = CamExplorer(ds, providers={'CAM': lambda c: maps, 'slow': slow})
    ex.wait(); ts = []
    for i in range(k):
        n = ex.n_progress; t = time.perf_counter(); ex.w_method.value = 'slow' if i % 2 == 0 else 'CAM'
        ts.append(time.perf_counter() - t); assert ex.n_progress > n
        ex.wait()
        for c in ex.caches.values(): c._maps.pop(('slow', ()), None); c._small.pop(('slow', ()), None)
    print(f"method switch -> first progress shown, {k} switches: {ms(ts)}")
    print(f"TARGET method switch -> progress <= 200 ms: max {max(ts)*1e3:.1f} ms -> {'met' if max(ts) <= .2 else 'MISSED'}")

def monitor_run(steps):
    "A real PSOL run (embedded data, bundled backbone) watched by the monitor: the longest gap between redraws."
    from wsol_nb.monitor import TrainingMonitor
    from wsol_nb.psol import train_psol
    from wsol_nb.synthetic import default_dataset
    from wsol_nb.data import load_dataset
    root = default_dataset(); out = Path(tempfile.mkdtemp())/'psol'
    fit = lambda cbs, **run: train_psol(root, boxes='gt', max_steps=steps, cbs=cbs, progress=False, **run)
    mon = TrainingMonitor(fit, out=out, samples=load_dataset(root, split='test'), n=8)
    t = time.perf_counter(); mon.start(); mon.wait(); T = time.perf_counter() - t
    first = mon.times[0] if mon.times else t
    rt = [x for x in mon.redraw_times if x >= first]
    gaps = np.diff([first] + rt + [t + T]) if rt else np.array([T])
    print(f"monitor, PSOL {steps} steps in {T:.1f} s ({steps/T:.2f} steps/s): {mon.n_redraws} status/curve redraws, "
          f"{mon.n_updates} sample redraws; longest gap between redraws after the first step {gaps.max():.2f} s; status: {mon.status}")
    print(f"TARGET monitor redraws at least every 2 s: longest gap {gaps.max():.2f} s -> {'met' if gaps.max() <= 2 else 'MISSED'}")

if __name__ == '__main__': main()
