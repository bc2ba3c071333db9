"""Map methods on CPU: speed side by side with pytorch-grad-cam and TorchCAM, memory over a long run, and MaxBoxAcc on
the embedded data.

    python benchmarks/bench_cam.py [--sections speed,memory,table] [--threads 2] [--reps 3] [--out DIR]

speed   Images per CPU-second (the process's CPU time, all threads: on a shared machine wall time measures the
        neighbours) of each method with the bundled EfficientNet-Lite0 (ImageNet weights), on the embedded data's test
        images at two input sizes (160 and 224 px, batch 8), for the kit and for each library that has the method, timed
        interleaved in one run (the median of --reps rounds); the ratio is the kit's speed over the faster library's.
        Every library is used as its users call it (its own hooks, normalisation and resizing) on the same model
        object, images and target classes. The ratio is the kit's speed over a library's for the same output: beside
        pytorch-grad-cam the kit's maps at the input size, beside TorchCAM (which returns maps at the tap's size) the
        kit's maps at the tap's size; the smaller of the two. Score-CAM (1,280 masked forward passes per image at the head) runs on
        --score-images images at 112 px, once.
memory  Peak RSS while `dataset_cams` writes maps of 2,000 images (64 px, batch 32) for every cheap method: the RSS after
        the first 10 batches against the largest RSS later (growth = leak). Score-CAM: --score-images x 20 images, one a batch
        (each ~640 masked passes of 32).
table   A classifier fine-tuned on the embedded data (the demo's, `train_classifier` preset 'synthetic', kept in
        --out), then every method's GT-class maps of the embedded test split: seconds per image and MaxBoxAccV2
        (wsolevaluation protocol). Score-CAM on the first 2 test images of each class (it costs a minute an image here).
"""
import argparse, json, os, resource, statistics, sys, time, warnings
from pathlib import Path
import numpy as np, torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wsol_nb.backbones import get_backbone
from wsol_nb import cam as C
from wsol_nb.cam import METHODS, compute_cams

PGC = dict(gradcam='GradCAM', **{'gradcam++': 'GradCAMPlusPlus'}, xgradcam='XGradCAM', hirescam='HiResCAM',
           layercam='LayerCAM', scorecam='ScoreCAM', eigencam='EigenCAM')
TC = dict(cam='CAM', gradcam='GradCAM', **{'gradcam++': 'GradCAMpp'}, xgradcam='XGradCAM', layercam='LayerCAM', scorecam='ScoreCAM')

def rss_mb() -> float:
    "Current resident set size in MB (Linux)."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def images(n:int, size:int, root) -> torch.Tensor:
    "The first `n` test images of the embedded dataset at size x size, in [0,1]."
    from wsol_nb.data import load_dataset, eval_transform
    ds = load_dataset(root, 'cub', 'test', transform=eval_transform('wsoleval', size=size)); ds.masks = False
    return torch.stack([ds[i]['image'] for i in range(n)]).float().div(255) if ds[0]['image'].dtype == torch.uint8 else \
        torch.stack([ds[i]['image'] for i in range(n)])

def run_kit(bb, x, cls, m): return compute_cams(bb, x, cls, m, norm='minmax', variant='libraries')[0]
def run_kit_small(bb, x, cls, m): return compute_cams(bb, x, cls, m, norm='minmax', variant='libraries', upsample=False)[0]

def run_pgc(bb, x, cls, m):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    with getattr(pgc, PGC[m])(model=bb, target_layers=[bb.stages['head']]) as c:
        if m == 'scorecam': c.batch_size = 16
        return c(input_tensor=x, targets=[ClassifierOutputTarget(int(k)) for k in cls])

def run_tc(bb, x, cls, m):
    import torchcam.methods as tc
    kw = dict(fc_layer='fc') if m == 'cam' else {}
    with getattr(tc, TC[m])(bb, target_layer='stages.head', input_shape=tuple(x.shape[1:]), **kw) as c:
        with torch.set_grad_enabled(m not in ('cam', 'scorecam')): s = bb(x)
        return c(class_idx=cls.tolist(), scores=s)[0]

def timed(f, *a) -> float:
    "CPU seconds of the process (all threads) for f(*a): robust to other work on a shared machine, unlike wall time."
    t = time.process_time(); f(*a); return time.process_time() - t

def speed(root, reps, score_images):
    bb = get_backbone().eval()
    rows = []
    cases = [(m, s, 8) for s in (160, 224) for m in METHODS if m not in ('rollout', 'scorecam')] + [('scorecam', 112, score_images)]
    for m, size, n in cases:
        x = images(n, size, root)
        with torch.no_grad(): cls = bb(x).argmax(1)
        libs = {'kit': run_kit, **({'pytorch-grad-cam': run_pgc} if m in PGC else {}),
                **({'kit at map size': run_kit_small, 'TorchCAM': run_tc} if m in TC else {})}
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for f in libs.values(): f(bb, x[:1], cls[:1], m) if m != 'scorecam' else None   # warm-up
            t = {k: [] for k in libs}
            for _ in range(1 if m == 'scorecam' else reps):
                for k, f in libs.items(): t[k].append(timed(f, bb, x, cls, m))
        ips = {k: n / statistics.median(v) for k, v in t.items()}
        # like for like: pytorch-grad-cam returns maps at the input size (as the kit), TorchCAM at the map's size
        ratios = ([ips['kit'] / ips['pytorch-grad-cam']] if 'pytorch-grad-cam' in ips else []) + \
                 ([ips['kit at map size'] / ips['TorchCAM']] if 'TorchCAM' in ips else [])
        r = dict(method=m, size=size, images=n, **{f'{k} img/s': round(v, 2) for k, v in ips.items()},
                 ratio=round(min(ratios), 2) if ratios else None)
        rows.append(r); print(json.dumps(r), flush=True)
    return rows

def memory(score_images):
    import tempfile
    from wsol_nb.synthetic import make_synthetic
    from wsol_nb.data import load_dataset, eval_transform
    from wsol_nb.io import MapWriter
    d = Path(tempfile.mkdtemp())
    root = make_synthetic(d/'data', n_classes=10, n_train=1, n_test=200, size=64)
    bb, rows, orig = get_backbone().eval(), [], C.compute_cams
    for m in [m for m in METHODS if m != 'rollout']:
        ds = load_dataset(root, 'cub', 'test', transform=eval_transform('wsoleval', size=64)); ds.masks = False
        if m == 'scorecam': ds.records = ds.records[:score_images*20]
        trace = []
        def rec(*a, **k):
            out = orig(*a, **k); trace.append(rss_mb()); return out
        C.compute_cams = rec
        t = time.perf_counter()
        try:
            with MapWriter(d/f'{m}.npz') as w: C.dataset_cams(bb, ds, w, m, 'top1', batch_size=1 if m == 'scorecam' else 32, progress=False)
        finally: C.compute_cams = orig
        warm = max(trace[:10]); later = max(trace[10:]) if len(trace) > 10 else warm
        r = dict(method=m, images=len(ds), batches=len(trace), rss_after_10_batches_mb=round(warm), rss_max_later_mb=round(later),
                 growth_mb=round(later - warm, 1), seconds=round(time.perf_counter() - t, 1))
        rows.append(r); print(json.dumps(r), flush=True)
    return rows

def table(root, out):
    from wsol_nb.psol import train_classifier
    from wsol_nb.demo import TestSet, eval_all
    from wsol_nb.data import load_dataset
    from wsol_nb.io import MapWriter, load_maps
    from torchvision.transforms import v2
    r = train_classifier(root, 'cub', split='train', preset='synthetic', out=Path(out)/'classifier', progress=False, resume=True)
    m, S = r.model.eval(), r.config['size']
    ts = TestSet(root)
    rows = []
    for meth in [k for k in METHODS if k != 'rollout']:
        ds = load_dataset(root, 'cub', 'test', transform=v2.Resize((S, S)))
        sub = ts
        if meth == 'scorecam':      # two test images per class
            keep = [i for i, l in enumerate(ts.labels) if (ts.labels[:i] == l).sum() < 2]
            ds.records = [ds.records[i] for i in keep]
            sub = TestSet(root); sub.ids = [ts.ids[i] for i in keep]; sub.boxes = [ts.boxes[i] for i in keep]
            sub.sizes = [ts.sizes[i] for i in keep]; sub.labels = ts.labels[keep]; sub.masks = [ts.masks[i] for i in keep] if ts.masks else None
        t = time.perf_counter()
        with MapWriter(Path(out)/f'{meth}.npz') as w: preds, _ = C.dataset_cams(m, ds, w, meth, 'gt', progress=False)
        sec = (time.perf_counter() - t) / len(ds)
        res = eval_all(sub, maps=load_maps(Path(out)/f'{meth}.npz'), preds=preds)['wsoleval']
        row = dict(method=meth, images=len(ds), seconds_per_image=round(sec, 3), MaxBoxAccV2=round(res['MaxBoxAccV2'], 2),
                   MaxBoxAcc=round(res['MaxBoxAcc'], 2) if 'MaxBoxAcc' in res else None)
        if sub is not ts:   # CAM on the same images, for a like-for-like line
            cam = eval_all(sub, maps=load_maps(Path(out)/'cam.npz'), preds=preds)['wsoleval']
            row['cam_same_images_MaxBoxAccV2'] = round(cam['MaxBoxAccV2'], 2)
        rows.append(row); print(json.dumps(row), flush=True)
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sections', default='speed,memory,table')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--score-images', type=int, default=1)
    ap.add_argument('--out', default='bench_cam_out')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from wsol_nb.synthetic import default_dataset
    root = default_dataset()
    print(f"torch {torch.__version__}, {a.threads} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    res = {}
    for s in a.sections.split(','):
        print(f"== {s}", flush=True)
        res[s] = dict(speed=lambda: speed(root, a.reps, a.score_images), memory=lambda: memory(a.score_images),
                      table=lambda: table(root, a.out))[s]()
    Path(a.out).mkdir(exist_ok=True, parents=True)
    (Path(a.out)/'bench_cam.json').write_text(json.dumps(res, indent=1))
