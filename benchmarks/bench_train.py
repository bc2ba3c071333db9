#!/usr/bin/env python
"""Training throughput: the kit's PSOL training loop vs a bare forward+backward loop of the same model and batch.

Three loops, alternated `--repeats` times; each run starts from a freshly built model (ImageNet backbone weights, the
same seed) and is timed over `--steps` optimizer steps after `--warmup` steps:

- bare: the model (PSOL-Sep on the bundled EfficientNet-Lite0 by default), SGD with the preset's parameter groups,
  preloaded float batches already on the device; forward + loss + backward + optimizer step, nothing else;
- trainer, in memory: `wsol_nb.train.Trainer` (as `train_psol` builds it) over preloaded uint8 batches as the data
  loader yields them: the Trainer's own overhead (device copy, autocast, loss sync and checks, history, progress bar,
  scheduler, callbacks) without data loading;
- loop: `wsol_nb.psol.train_psol` itself on the embedded synthetic dataset (`wsol_nb.synthetic.default_dataset`):
  DataLoader with JPEG decoding, box-aware random resized crop + flip, `psol_collate`, `--workers` processes.

Throughput is images/s over the timed steps, in wall time and in CPU time (this process and its DataLoader workers),
and (CPU only) the median over steps of one step's images/s, wall and main-process CPU time, which a burst of other
jobs on a shared machine moves less; minor page faults per step are printed too (glibc returning freed activation
memory to the OS makes a CPU step 15-25% slower, and by how much depends on the allocator's history).
Ratios: best run against best run, and the median over repeats of adjacent-run ratios. Target: loop / bare >= 0.85.
Then (CPU) an interleaved run: `train_psol` with one bare step after each of its steps, paired step by step; and a
breakdown: the data pipeline alone in one process (decode, crop+flip, collate) and the Trainer's per-step machinery
(a model that costs nothing, in the Trainer and in a bare loop), giving the ratio the parts predict.
The GPU settings follow the Trainer's defaults (bf16 autocast and channels-last on CUDA), applied to all loops.
glibc's allocator is tuned at the start (`wsol_nb.train.tune_malloc`, what the Trainer does on a CPU);
`--no-malloc-tune` keeps glibc's defaults for the whole run (see benchmarks/README.md).

CPU (default): .venv/bin/python benchmarks/bench_train.py [--steps 26] [--repeats 3] [--workers 0] [--threads 2]
GPU: python benchmarks/bench_train.py --device cuda [--workers 8] [--batch-size 64 --size 224 --steps 100]
"""
import argparse, math, os, platform, resource, statistics, tempfile, time
from functools import partial
import torch, torch.nn as nn
from torch.utils.data import DataLoader
from wsol_nb.data import load_dataset
from wsol_nb.synthetic import default_dataset
from wsol_nb.train import Trainer, Callback, set_seed, param_groups, split_params, default_x, batch_size, set_bn_momentum, loader_workers
from wsol_nb.psol import (get_preset, with_pseudo_boxes, psol_transform, psol_collate, psol_loss, psol_step, build_psol,
                          train_psol)

try: import psutil
except ImportError: psutil = None

def cpu_seconds() -> float:
    "CPU time of this process, its live children (DataLoader workers) and its reaped children."
    t = os.times(); s = t.children_user + t.children_system
    if psutil is None: return time.process_time() + s
    p = psutil.Process(); c = p.cpu_times(); s += c.user + c.system
    for ch in p.children(recursive=True):
        try: c = ch.cpu_times(); s += c.user + c.system
        except psutil.Error: pass
    return s

def cpu_name() -> str:
    try:
        for l in open('/proc/cpuinfo'):
            if l.startswith('model name'): return l.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

class Clock:
    "Wall and CPU time (with DataLoader workers) at named points; per-step wall / main-process CPU times."
    def __init__(self, dev): self.dev, self.marks, self.steps, self.pairs, self.last = dev, {}, [], [], None
    def mark(self, k):
        sync(self.dev); self.marks[k] = (time.perf_counter(), cpu_seconds(), faults()); self.last = now()
    def span(self, a, b): return tuple(y - x for x, y in zip(self.marks[a], self.marks[b]))
    def step(self, n):
        "Log one step of `n` images since the previous mark or step (no device sync: CPU figures only)."
        t = now(); self.steps.append((t[0] - self.last[0], t[1] - self.last[1], n)); self.last = t

def now(): return time.perf_counter(), time.process_time()
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

class Bare:
    "The bare loop: model, SGD, preloaded float batches on the device; `step` = forward + loss + backward + SGD step."
    def __init__(self, a, p, lr, xs, dev, amp, mf):
        self.m = make_model(a, p).to(dev, memory_format=mf).train()
        self.opt, self.xs, self.dev, self.amp, self.ls, self.i = sgd(self.m, p, lr), xs, dev, amp, p.loss_scale, 0
    def step(self):
        x, t = self.xs[self.i % len(self.xs)]; self.i += 1
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = psol_loss(self.m(x), dict(target=t), self.ls)
        loss.backward(); self.opt.step(); self.opt.zero_grad(set_to_none=True)

class SegmentTimer(Callback):
    "Marks the clock after step `w` and after step `w + n`, logging the steps in between (each followed by `pair.step()`)."
    def __init__(self, clk, w, n, want_cl=None, pair=None): self.clk, self.w, self.n, self.want_cl, self.pair = clk, w, n, want_cl, pair
    def before_fit(self, tr):
        self.clk.mark('fit')
        if self.want_cl is not None and tr.channels_last != self.want_cl:  # train_psol does not take channels_last
            tr.channels_last = self.want_cl
            tr.model.to(memory_format=torch.channels_last if self.want_cl else torch.contiguous_format)
    def after_step(self, tr, step, loss, b):
        if step == self.w: self.clk.mark('a')
        elif self.w < step <= self.w + self.n:
            self.clk.step(batch_size(b))
            if self.pair is not None:  # one bare step, left out of the loop's next interval
                t = now(); self.pair.step(); u = now()
                self.clk.pairs.append((u[0] - t[0], u[1] - t[1], self.pair.xs[0][0].shape[0])); self.clk.last = now()
            if step == self.w + self.n: self.clk.mark('b')

def make_model(a, p):
    "The model as `train_psol` builds it (same seed, so the same head initialisation)."
    set_seed(0)
    return set_bn_momentum(build_psol(a.backbone, a.weights, 'sep'), p.bn_momentum)

def sgd(model, p, lr):
    "SGD with the parameter groups and hyperparameters `train_psol` gives the Trainer."
    gs = param_groups(*split_params(model, model.new_layers), head_lr_mult=p.head_lr_mult)
    for g in gs: g['lr'] = lr * g['lr_mult']
    return torch.optim.SGD(gs, lr=lr, momentum=p.mom, weight_decay=p.wd)

class Tiny(nn.Module):
    "A model that costs next to nothing: mean colour -> 4 sigmoid outputs (to time the machinery around the model)."
    def __init__(self): super().__init__(); self.l = nn.Linear(3, 4)
    def forward(self, x): return torch.sigmoid(self.l(x.float().mean((2, 3))))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--preset', default='synthetic', help='PSOL preset (lr, wd, crop scale, default batch size and size)')
    ap.add_argument('--backbone', default='efficientnet_lite0')
    ap.add_argument('--weights', default='imagenet', help="'imagenet', a file or 'none' (random weights: same speed)")
    ap.add_argument('--steps', type=int, default=26, help='timed steps per run (26 = two epochs of the synthetic split at batch 16)')
    ap.add_argument('--warmup', type=int, default=3, help='untimed steps at the start of each run')
    ap.add_argument('--repeats', type=int, default=3, help='alternating runs of each loop')
    ap.add_argument('--batch-size', type=int, default=None, help="default: the preset's")
    ap.add_argument('--size', type=int, default=None, help="training crop side; default: the preset's")
    ap.add_argument('--workers', type=int, default=None, help="DataLoader workers; default: train_psol's (0 on CPU, min(8, CPUs) on CUDA)")
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads of the main process')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast; default: the Trainer's (on for CUDA)")
    ap.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=None, help="default: the Trainer's (on for CUDA)")
    ap.add_argument('--progress', action=argparse.BooleanOptionalAction, default=True, help="the Trainer's tqdm bar (train_psol's default: on)")
    ap.add_argument('--preload', type=int, default=8, help='batches preloaded for the bare and in-memory loops')
    ap.add_argument('--data', default=None, help='CUB-layout dataset root; default: the embedded synthetic dataset')
    ap.add_argument('--pairs', type=int, default=None, help='CPU: steps of the interleaved run (a bare step after each loop '
                    'step; default --steps, 0: none)')
    ap.add_argument('--malloc-tune', action=argparse.BooleanOptionalAction, default=True, help='tune glibc malloc at the '
                    'start as the Trainer does on a CPU (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB); --no-malloc-tune: '
                    "keep glibc's defaults, also inside the Trainer")
    ap.add_argument('--no-breakdown', dest='breakdown', action='store_false', help='skip the data / Trainer breakdown')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    import wsol_nb.train as T
    if a.malloc_tune: tuned = T.tune_malloc()
    else: tuned, T.tune_malloc = False, (lambda *a, **k: False)    # the Trainer calls the module's function
    if a.malloc_tune and not tuned: print("# no glibc mallopt here: allocator left as it is")
    dev = torch.device(a.device)
    if dev.type == 'cuda' and dev.index is None: dev = torch.device('cuda', torch.cuda.current_device())
    a.weights = None if a.weights == 'none' else a.weights
    amp = dev.type == 'cuda' if a.amp is None else a.amp
    cl = dev.type == 'cuda' if a.channels_last is None else a.channels_last
    p = get_preset(a.preset)
    bs, S = a.batch_size or p.batch_size, a.size or p.size
    W, N = a.warmup, a.steps
    workers = loader_workers(a.workers, dev)
    lr = p.lr_for(bs)
    mf = torch.channels_last if cl else torch.contiguous_format

    root = a.data or default_dataset()
    ds = load_dataset(root, 'cub', 'train')
    nb = math.ceil(len(ds) / bs)
    # preloaded batches: full batches of the real pipeline (same transform and collate)
    pre_dl = DataLoader(with_pseudo_boxes(ds, 'gt', psol_transform(S, scale=p.crop_scale)), bs, shuffle=True,
                        collate_fn=psol_collate, generator=torch.Generator().manual_seed(0))
    pre = [b for _, b in zip(range(a.preload), (b for b in pre_dl if b is not None and len(b['image']) == bs))]
    if not pre: raise SystemExit(f"no full batch of {bs} images in {root} ({len(ds)} training images): lower --batch-size")
    xs = [(default_x(b).to(dev, memory_format=mf), b['target'].to(dev)) for b in pre]
    mem = [{k: b[k] for k in ('image', 'target', 'label', 'id', 'index', 'size', 'n_skipped')} for b in pre]
    tmp = tempfile.TemporaryDirectory(prefix='bench_train_')

    def bare():
        bl, clk = Bare(a, p, lr, xs, dev, amp, mf), Clock(dev)
        for i in range(W): bl.step()
        clk.mark('a')
        for i in range(N): bl.step(); clk.step(bs)
        clk.mark('b')
        return clk
    def trainer_mem():
        clk = Clock(dev); m = make_model(a, p)
        tr = Trainer(m, mem, step=partial(psol_step, loss_scale=p.loss_scale), params=param_groups(
                     *split_params(m, m.new_layers), head_lr_mult=p.head_lr_mult), lr=lr, mom=p.mom, wd=p.wd,
                     epochs=None, max_steps=W + N, cbs=[SegmentTimer(clk, W, N)], device=dev, amp=amp, channels_last=cl,
                     progress=a.progress)
        tr.fit()
        return clk
    runs = []
    def loop(n=N, pair=None):
        clk = Clock(dev); clk.mark('call')
        r = train_psol(ds, boxes='gt', backbone=a.backbone, weights=a.weights, preset=p, out=f'{tmp.name}/run{len(runs)}',
                       epochs=math.ceil((W + n) / nb) + 1, batch_size=bs, size=S, max_steps=W + n, workers=workers,
                       device=dev, amp=amp, cbs=[SegmentTimer(clk, W, n, cl, pair)], progress=a.progress)
        clk.mark('ret')
        runs.append(dict(setup=clk.span('call', 'fit')[0], warm=clk.span('fit', 'a')[0], tail=clk.span('b', 'ret')[0],
                         total=r.result['seconds']))
        return clk

    la0 = os.getloadavg()
    dname = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_name()
    print(f"# bench_train: {dname} ({dev}), {os.cpu_count()} CPUs visible, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, load average {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f}")
    print(f"# preset {p.name}: {a.backbone} ({a.weights}) PSOL-Sep, batch {bs}, {S} px, lr {lr:g}, {len(ds)} training images "
          f"({nb} batches/epoch), amp {amp}, channels_last {cl}, workers {workers}, progress bar {a.progress}; "
          f"{a.repeats} x {N} timed steps after {W} warm-up steps" + ("; glibc malloc tuned" if tuned else "; glibc malloc defaults"))
    loops = dict(bare=bare, trainer_mem=trainer_mem, loop=loop)
    res = {k: [] for k in loops}  # per run: (wall s, CPU s, images, median-step img/s wall, main-process CPU)
    med = statistics.median
    for r in range(a.repeats):
        for k, f in loops.items():
            clk = f()
            (w, c, nf), n = clk.span('a', 'b'), sum(x[2] for x in clk.steps)
            sw, sc = (med([x[2] / x[0] for x in clk.steps]), med([x[2] / x[1] for x in clk.steps])) if dev.type == 'cpu' \
                else (math.nan, math.nan)  # on a GPU only the synchronised segment times mean something
            res[k].append((n / w, n / c, sw, sc))
            print(f"  run {r+1} {k:11s} {n/w:7.2f} img/s wall, {n/c:7.2f} img/s CPU; median step {sw:7.2f} img/s wall, "
                  f"{sc:7.2f} main CPU  ({n} images, {w:.2f} s, CPU {c:.2f} s, {nf / len(clk.steps):.0f} page faults/step)", flush=True)

    print(f"\n{'':12s} {'best img/s':>10s} {'median':>8s} {'CPU img/s':>10s} {'step img/s':>10s} {'step CPU':>9s}   (medians over runs)")
    for k in loops:
        v = list(zip(*res[k]))
        print(f"{k:12s} {max(v[0]):10.2f} {med(v[0]):8.2f} {med(v[1]):10.2f} {med(v[2]):10.2f} {med(v[3]):9.2f}")
    pm = lambda k, j: med([x[j] / y[j] for x, y in zip(res[k], res['bare'])])  # ratio of adjacent runs, median
    for k, what in (('trainer_mem', 'Trainer in memory / bare'), ('loop', 'loop / bare')):
        best = max(x[0] for x in res[k]) / max(x[0] for x in res['bare'])
        print(f"ratio {what:24s}: best-of {best:.3f}; paired median {pm(k, 0):.3f} wall, {pm(k, 1):.3f} CPU; "
              + (f"median step {pm(k, 2):.3f} wall, {pm(k, 3):.3f} main-process CPU" if dev.type == 'cpu' else '')
              + ("   (target >= 0.85)" if k == 'loop' else ''))
    rs = runs[:a.repeats]
    print(f"train_psol runs (outside the timed steps): set-up {med([x['setup'] for x in rs]):.2f} s, "
          f"{W} warm-up steps {med([x['warm'] for x in rs]):.2f} s, final checkpoint + config {med([x['tail'] for x in rs]):.2f} s; "
          f"fit {med([x['total'] for x in rs]):.2f} s in all")

    P = N if a.pairs is None else a.pairs
    if P and dev.type == 'cpu':  # paired at the step scale: load changes over seconds hit both members of a pair alike
        pb = Bare(a, p, lr, xs, dev, amp, mf)
        for _ in range(W): pb.step()
        clk = loop(P, pb)
        L, B = clk.steps, clk.pairs
        rr = lambda j: med([(l[2] / l[j]) / (b[2] / b[j]) for l, b in zip(L, B)])
        sm = lambda xs, j: sum(x[2] for x in xs) / sum(x[j] for x in xs)
        print(f"\ninterleaved run, {P} loop steps each followed by a bare step: loop {sm(L, 0):.2f} img/s wall, "
              f"{sm(L, 1):.2f} CPU; bare {sm(B, 0):.2f} wall, {sm(B, 1):.2f} CPU")
        print(f"ratio loop / bare, interleaved: median of step pairs {rr(0):.3f} wall, {rr(1):.3f} CPU; of the sums "
              f"{sm(L, 0) / sm(B, 0):.3f} wall, {sm(L, 1) / sm(B, 1):.3f} CPU   (target >= 0.85)"
              + ("  [workers prefetch during the bare steps: favours the loop]" if workers else ''))

    if a.breakdown:
        cpu = dev.type == 'cpu'
        clock = time.process_time if cpu else lambda: (sync(dev), time.perf_counter())[1]
        unit = 'main-process CPU' if cpu else 'wall'
        # the data pipeline in one process, as train_psol's loader runs it with 0 workers
        tf = psol_transform(S, scale=p.crop_scale)
        tds, raw = with_pseudo_boxes(ds, 'gt', tf), with_pseudo_boxes(ds, 'gt', None)
        c, w, n = time.process_time(), time.perf_counter(), 0
        for b in DataLoader(tds, bs, shuffle=True, collate_fn=psol_collate): n += len(b['image'])
        t_dl, w_dl = (time.process_time() - c) / n, (time.perf_counter() - w) / n
        c = time.process_time(); ss = [raw[i] for i in range(len(raw))]; t_dec = (time.process_time() - c) / len(ss)
        c = time.process_time(); ts = [tf(x) for x in ss]; t_tf = (time.process_time() - c) / len(ss)
        c = time.process_time(); [psol_collate(ts[i:i + bs]) for i in range(0, len(ts), bs)]; t_col = (time.process_time() - c) / len(ss)
        print(f"\nbreakdown: data pipeline in one process: {w_dl * 1e3:.2f} ms/image wall, CPU time {t_dl * 1e3:.2f} ms/image "
              f"= {t_dl * bs * 1e3:.1f} ms/batch: "
              f"decode {t_dec * 1e3:.2f}, crop+flip {t_tf * 1e3:.2f}, collate {t_col * 1e3:.2f}, "
              f"DataLoader/sampler/rest {(t_dl - t_dec - t_tf - t_col) * 1e3:.2f} ms/image")
        # the Trainer's machinery per step: a model that costs nothing, in the Trainer and in a bare loop
        K, tb, tt = 100, [], []
        for _ in range(3):
            m = Tiny().to(dev); o = torch.optim.SGD(m.parameters(), lr=lr, momentum=p.mom)
            t0 = clock()
            for i in range(K):
                x, t = xs[i % len(xs)]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp): loss = psol_loss(m(x), dict(target=t))
                loss.backward(); o.step(); o.zero_grad(set_to_none=True)
            tb.append((clock() - t0) / K)
            tr = Trainer(Tiny(), mem, step=partial(psol_step, loss_scale=p.loss_scale), lr=lr, mom=p.mom, epochs=None,
                         max_steps=K, device=dev, amp=amp, channels_last=cl, progress=a.progress)
            t0 = clock(); tr.fit(); tt.append((clock() - t0) / K)
        t_tr = max(med(tt) - med(tb), 0.)
        v = list(zip(*res['bare']))
        t_step = bs / (med(v[3]) if cpu else med(v[0]))
        t_data = t_dl * bs if workers == 0 else 0.
        print(f"breakdown: Trainer machinery {t_tr * 1e3:.2f} ms/step ({unit}; progress bar {a.progress}); bare step "
              f"{t_step * 1e3:.0f} ms ({'median step, main-process CPU' if cpu else 'wall'}); data "
              + (f"{t_data * 1e3:.1f} ms/step in the main process" if workers == 0 else
                 f"in {workers} worker(s): {t_dl * bs / t_step:.2f} of a core's time per bare step")
              + f" -> ratio loop / bare from the parts {t_step / (t_step + t_tr + t_data):.3f}")
    la1 = os.getloadavg()
    print(f"load average after: {la1[0]:.2f} {la1[1]:.2f} {la1[2]:.2f}")
    tmp.cleanup()

if __name__ == '__main__': main()
