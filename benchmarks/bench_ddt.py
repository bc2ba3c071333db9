#!/usr/bin/env python
"""DDT pseudo-box generation throughput vs bare feature extraction, same backbone, same batches.

Both loops get the same pre-made uint8 batches (N images, size x size): the bare loop only runs the backbone to the
tap; the DDT loop runs `wsol_nb.ddt.ddt_set` (features -> float64 PCA statistics -> fit -> projection -> sign rule ->
largest-component boxes). The ratio DDT / bare throughput says what PCA, projection and boxes cost (target >= 0.90).
A breakdown on cached features times each DDT step alone.

CPU (default): bundled EfficientNet-Lite0, last stage, 224 px.
GPU (not measured in this kit's CI): python benchmarks/bench_ddt.py --device cuda --amp --channels-last \
    --backbone vgg16 --weights none --size 448 --n 2048 --batch-size 128 --decode cuda
(--decode cuda: the batches are JPEG bytes decoded by torchvision.io.decode_jpeg on the GPU inside both loops.)
"""
import argparse, io, time, statistics
import numpy as np, torch, torch.nn.functional as F
import skimage.data
from PIL import Image
from wsol_nb.backbones import get_backbone
from wsol_nb.ddt import PCAStats, ddt_set, features, default_tap, orient, ddt_boxes, MAP_RULES

def photos():
    g = lambda a: np.repeat(a[..., None], 3, 2)
    return [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.astronaut(),
            skimage.data.stereo_motorcycle()[0], skimage.data.stereo_motorcycle()[1], g(skimage.data.camera())]

def make_images(n, size, seed=0):
    "n distinct uint8 images (3,size,size): random crops and flips of skimage photos."
    rng, ps, out = np.random.default_rng(seed), photos(), []
    for i in range(n):
        a = ps[i % len(ps)]; h, w = a.shape[:2]
        s = rng.uniform(.6, 1.); ch, cw = int(h*s), int(w*s)
        y, x = rng.integers(0, h-ch+1), rng.integers(0, w-cw+1)
        c = torch.from_numpy(np.ascontiguousarray(a[y:y+ch, x:x+cw])).permute(2, 0, 1)
        if rng.random() < .5: c = c.flip(-1)
        out.append(F.interpolate(c[None].float(), (size, size), mode='bilinear', antialias=True)[0].round().clamp(0, 255).byte())
    return out

def make_batches(imgs, bs, decode, device):
    "Batches as dicts (image, size, id); with decode != 'none' the image is a list of JPEG byte tensors."
    bl = []
    for k in range(0, len(imgs), bs):
        chunk = imgs[k:k+bs]
        if decode == 'none': im = torch.stack(chunk)
        else:
            im = []
            for c in chunk:
                buf = io.BytesIO(); Image.fromarray(c.permute(1, 2, 0).numpy()).save(buf, 'JPEG', quality=90)
                im.append(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
        bl.append(dict(image=im, size=torch.tensor([[c.shape[-1], c.shape[-2]] for c in chunk]), id=[f'{k+i}' for i in range(len(chunk))]))
    return bl

class Decoded:
    "Re-iterable view of batches that decodes JPEG bytes on each pass (as a data loader would)."
    def __init__(self, bl, decode): self.bl, self.decode = bl, decode
    def __iter__(self):
        from torchvision.io import decode_jpeg
        for b in self.bl:
            im = b['image']
            if self.decode != 'none':
                dev = 'cuda' if self.decode == 'cuda' else 'cpu'
                im = torch.stack(decode_jpeg(im, device=dev))
            yield dict(b, image=im)

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=96, help='images')
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--backbone', default='efficientnet_lite0')
    ap.add_argument('--weights', default='imagenet', help="'imagenet', a file, or 'none' (random weights: same speed)")
    ap.add_argument('--tap', default=None, help='default: wsol_nb.ddt.default_tap')
    ap.add_argument('--sign', default='smaller')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--amp', action='store_true', help='bfloat16 autocast')
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument('--decode', default='none', choices=['none', 'cpu', 'cuda'], help='decode JPEG bytes inside the loops')
    ap.add_argument('--repeats', type=int, default=5, help='alternating timed runs of each loop')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    bb = get_backbone(a.backbone, None if a.weights == 'none' else a.weights).to(dev)
    if a.channels_last: bb = bb.to(memory_format=torch.channels_last)
    tap = a.tap or default_tap(bb)
    batches = Decoded(make_batches(make_images(a.n, a.size), a.batch_size, a.decode, dev), a.decode)
    kw = dict(amp=a.amp, channels_last=a.channels_last)

    def bare():
        for b in batches: f = features(bb, b['image'], tap, **kw)
        sync(dev)
    def ddt():
        r = ddt_set(batches, bb, tap, a.sign, **kw); sync(dev); return r

    with torch.inference_mode(): features(bb, next(iter(batches))['image'], tap, **kw); sync(dev)  # warm-up
    tb, td, cb, cd = [], [], [], []  # wall and CPU (process) seconds; CPU time is the fairer clock on a shared machine
    for _ in range(a.repeats):
        t, c = time.perf_counter(), time.process_time(); bare(); tb.append(time.perf_counter() - t); cb.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time(); r = ddt(); td.append(time.perf_counter() - t); cd.append(time.process_time() - c)
    # breakdown on cached features (CPU time on a CPU: the fairer clock on a shared machine)
    clk = time.process_time if dev.type == 'cpu' else time.perf_counter
    fs = [features(bb, b['image'], tap, **kw) for b in batches]; sync(dev)
    t = clk(); st = PCAStats()
    for f in fs: st.update(f)
    sync(dev); t_stats = clk() - t
    t = clk(); ft = st.fit('loading'); sync(dev); t_fit = clk() - t
    t = clk()
    g = torch.cat([ft.project(f).cpu() for f in fs]); ft, s = orient(ft, a.sign, g if a.sign in MAP_RULES else None)
    ddt_boxes(g * s, torch.cat([b['size'] for b in batches]), 'nearest')
    t_box = clk() - t

    n, f0 = a.n, fs[0]
    bare_ips, ddt_ips = n / min(tb), n / min(td)
    med = lambda xs: statistics.median(xs)
    rw, rc = med([b / d for b, d in zip(tb, td)]), med([b / d for b, d in zip(cb, cd)])  # ratios of adjacent runs
    print(f"device {dev} ({torch.get_num_threads()} CPU threads), backbone {a.backbone} tap {tap} {tuple(f0.shape[1:])}, "
          f"{n} images {a.size}px, batch {a.batch_size}, amp {a.amp}, channels_last {a.channels_last}, decode {a.decode}")
    print(f"bare feature extraction: {bare_ips:8.1f} img/s best   (wall: {', '.join(f'{x:.2f}s' for x in tb)}; "
          f"CPU: {', '.join(f'{x:.2f}s' for x in cb)})")
    print(f"DDT pseudo boxes:        {ddt_ips:8.1f} img/s best   (wall: {', '.join(f'{x:.2f}s' for x in td)}; "
          f"CPU: {', '.join(f'{x:.2f}s' for x in cd)})")
    print(f"ratio DDT / bare throughput: best-of {ddt_ips / bare_ips:.3f}, median of paired runs {rw:.3f} wall"
          + (f", {rc:.3f} CPU time" if dev.type == 'cpu' else '') + "   (target >= 0.90)")
    tf = min(cb) if dev.type == 'cpu' else min(tb)
    print(f"breakdown on cached features (one set, one fit; {'CPU' if dev.type == 'cpu' else 'wall'} time): statistics {t_stats:.3f}s ({t_stats/tf:.1%} of extraction), "
          f"fit {t_fit:.3f}s ({t_fit/tf:.1%}), projection+sign+boxes {t_box:.3f}s ({t_box/tf:.1%}); "
          f"overhead {(t_stats+t_fit+t_box)/tf:.1%} -> ratio {tf/(tf+t_stats+t_fit+t_box):.3f}")
    print(f"boxes found: {int(r['found'].sum())}/{n}, explained variance ratio {r['fit'].ratio:.3f}")

if __name__ == '__main__': main()
