"Drive the widget objects of wsol_nb.explorer and wsol_nb.monitor: set control values, check what is displayed changes."
import threading, time
import numpy as np, pytest, torch
import torch.nn as nn, torch.nn.functional as F
from wsol_nb.synthetic import make_synthetic
from wsol_nb.data import load_dataset
from wsol_nb.train import Trainer, Callback
from wsol_nb.render import from_png, np_boxes, CAPTION_PX
from wsol_nb.scan import boxes_for, best_iou
from wsol_nb.explorer import (CamExplorer, MapCache, PROVIDERS, register_provider, spol_mask_provider, mff_cam_provider,
                              psol_box_provider, spol_box_provider, coincide_note)
from wsol_nb.monitor import TrainingMonitor, plan_start

torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _threads_done():
    """After each test, its explorer / monitor threads have finished: a daemon thread still inside torch or numba when the
    interpreter exits aborts the process (C++ terminate), however green the tests were."""
    yield
    for t in [t for t in threading.enumerate() if t.name.startswith('wsol-')]: t.join(120)

@pytest.fixture(scope='module')
def ds(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp('syn')/'s', n_classes=2, n_train=1, n_test=4, size=96)
    return load_dataset(root, 'cub', split='test')

def _blob(wh, box, s):
    (w, h), (x1, y1, x2, y2) = wh, box
    xs, ys = np.meshgrid(np.arange(w) + .5, np.arange(h) + .5)
    return np.exp(-.5*(((xs-(x1+x2)/2)/(s*(x2-x1)))**2 + ((ys-(y1+y2)/2)/(s*(y2-y1)))**2)).astype(np.float32)

def oracle(c, s=0.25):
    "Gaussian maps on the GT boxes: the best threshold is known (about exp(-2) for s=0.25)."
    return np.stack([_blob(c.frame, g[0], s) for g in c.gts])

def shifted(c):
    "Maps displaced by 30 px to the right: a method that misses."
    return np.stack([_blob(c.frame, g[0] + np.array([30, 0, 30, 0]), 0.25) for g in c.gts])

PROV = {'oracle': oracle, 'shifted': shifted, 'boxes': lambda c: [g.copy() for g in c.gts], 'MFF-Net CAM': None}

def slow(c, dt=0.15):
    "The oracle, computed batch by batch (one image per batch) at `dt` s per image, reporting its progress."
    for k in range(len(c)): time.sleep(dt); c.report(k+1, len(c))
    return oracle(c)

def test_threshold_slider_changes_boxes_iou_and_marker(ds):
    ex = CamExplorer(ds, providers=PROV, background=False)
    ex.w_value.value = 0.14
    s0, img0, curve0 = ex.state, ex.w_image.value, ex.w_curve.value
    assert s0['iou'] > 0.8
    ex.w_value.value = 0.9
    s1 = ex.state
    assert s1['iou'] < 0.2 and s1['boxes'] != s0['boxes']
    assert s1['marker_px'] > s0['marker_px'] and s1['marker_x'] == 0.9
    assert ex.w_image.value != img0 and ex.w_curve.value != curve0
    assert s1['n_draws'] == s0['n_draws'] + 1 and s1['n_curves'] == s0['n_curves']   # the curve is not re-scanned
    assert s1['accuracy_at_threshold'] < s0['accuracy_at_threshold']
    # the readout shows the IoU of the state
    assert f"IoU {s1['iou']:.3f}" in ex.w_readout.value
    # what is shown equals the plain functions' answer
    i = s1['pos']
    m = ex.cache.maps('oracle')[ex.order[i]].astype(np.float32)
    b = boxes_for(m, 'max_frac', 0.9, 'component')
    np.testing.assert_allclose(np_boxes(s1['boxes']), b)
    assert abs(s1['iou'] - best_iou(b, ex.cache.gts[ex.order[i]], 'wsoleval')) < 1e-6

def test_image_slider_dropdown_and_box_rule(ds):
    ex = CamExplorer(ds, providers=PROV, background=False)
    ex.w_pos.value = 2
    assert ex.w_pick.value == 2 and ex.state['index'] == 2
    ex.w_pick.value = 5
    assert ex.w_pos.value == 5 and ex.state['id'] == ex.cache.ids[5]
    n = ex.state['n_curves']
    ex.w_box.value = 'contours'
    assert ex.state['box_rule'] == 'contours' and ex.state['n_curves'] == n + 1

def test_method_switch_rescans_curve(ds):
    ex = CamExplorer(ds, providers=PROV, background=False)
    good = max(ex.state['curve_gt_known'])
    assert ex.wait(60); good_v2 = ex.state['maxboxacc_v2']
    ex.w_method.value = 'shifted'
    s, c0 = ex.state, ex.w_curve.value
    assert s['method'] == 'shifted' and max(s['curve_gt_known']) < good
    assert ex.wait(60) and ex.state['maxboxacc_v2'] < good_v2 and ex.w_curve.value != c0   # BoxAcc arrives later, redrawn
    ex.w_method.value = 'MFF-Net CAM'                                 # greyed: refused with a message
    assert ex.state['method'] == 'shifted' and 'not available' in ex.state['message']
    ex.w_method.value = 'boxes'                                       # a box provider: threshold has no effect
    assert ex.state['iou'] == pytest.approx(1.0)
    assert ex.state['curve_gt_known'] == [1.0, 1.0]

def test_class_filter_and_worst_first(ds):
    ex = CamExplorer(ds, providers=PROV, method='shifted', background=False)
    ex.w_class.value = 1
    assert set(ex.cache.labels[ex.state['order']]) == {1} and len(ex.state['order']) == 4
    ex.w_class.value = -1
    ex.w_worst.value = True
    ious = ex.image_ious()
    order = ex.state['order']
    assert list(ious[order]) == sorted(ious) and ex.state['pos'] == 0
    assert ex.state['iou'] == pytest.approx(float(ious.min()), abs=1e-6)

def test_rules_and_protocol(ds):
    ex = CamExplorer(ds, providers=PROV, background=False)
    ex.w_rule.value = 'percentile'
    assert ex.w_value.max == 100 and ex.state['threshold'] == 80 and ex.state['curve_x'][-1] == 100
    ex.w_rule.value = 'otsu'
    assert ex.w_value.disabled and ex.state['marker_x'] is None
    ex.w_rule.value = 'max_frac'
    assert ex.w_value.max == 1 and not ex.w_value.disabled
    ex.w_protocol.value = 'psol'
    s = ex.state
    assert s['protocol'] == 'psol' and 'psol' in ex.caches and len(s['gt']) == 1

def test_registered_provider_and_real_cam(ds):
    register_provider('half', lambda c: oracle(c, 0.5))
    try:
        ex = CamExplorer(ds, method='Grad-CAM', background=False)                       # the bundled backbone
        assert ex.state['method'] == 'Grad-CAM' and ex.cache.maps('Grad-CAM').shape == (8, 224, 224)
        assert 'Grad-CAM = CAM' in ex.w_note.value                        # coincide by construction on a GAP+FC head: said
        ex.w_method.value = 'DDT'                                        # per-class PCA on the cache's images
        m = ex.cache.maps('DDT')
        assert ex.state['method'] == 'DDT' and m.shape == (8, 224, 224) and (m == 0).any() and (m.max((1, 2)) == 1).all()
        assert ex.state['grid'] == (7, 7) and len(np.unique(m[0])) > 200      # 7x7 projections upsampled smoothly, not blocks
        img = ex.w_image.value; ex.w_grid.value = True                     # the feature grid on request
        assert ex.w_image.value != img and '7x7 features upsampled' in ex.w_legend.value
        ex.w_method.value = 'half'
        assert ex.state['method'] == 'half'
        ex.w_method.value = 'GPPL-CAM'
        assert ex.state['opts']['preset'] == 'spol_paper' and ex.gppl_box.layout.visibility == 'visible'
        ex.w_preset.value = 'spol_official'                               # the preset's region and fg threshold
        assert (ex.state['rule'], ex.state['threshold']) == ('fixed', 0.25) and 'fg where max(CAM, G) > 0.25' in ex.w_readout.value
        assert ex.state['opts']['lo'] == 0.1 and ('GPPL-CAM', (('hi', 0.5), ('lo', 0.1), ('preset', 'spol_official'))) in ex.cache._maps
    finally: PROVIDERS.pop('half')

def test_model_providers(ds):
    "The MFF-Net CAM, SPOL mask and PSOL box hooks with untrained networks: shapes, SPOL probabilities kept absolute."
    from wsol_nb.backbones import get_backbone
    from wsol_nb.mff import MFFNet
    torch.manual_seed(0)
    seg, cam = MFFNet(get_backbone('efficientnet_lite0', None), 1, head='seg'), MFFNet(get_backbone('efficientnet_lite0', None), 2, head='cls')
    c = MapCache(ds, providers={'SPOL mask': spol_mask_provider(seg), 'MFF-Net CAM': mff_cam_provider(cam)})
    p, m = c.maps('SPOL mask'), c.maps('MFF-Net CAM')
    assert p.shape == m.shape == (8, 224, 224)
    from wsol_nb.spol import fg_probs
    with torch.no_grad(): ref = fg_probs(seg, c.x(np.arange(2)))
    np.testing.assert_allclose(p[:2].astype(np.float32), ref.numpy(), atol=2e-3)   # probabilities, not min-max normalised
    assert np.allclose(m.max((1, 2)), 1, atol=1e-3)
    from wsol_nb.extract import mask_boxes
    sb = MapCache(ds, providers={'SPOL box': spol_box_provider(seg, 0.5)}).maps('SPOL box')   # SPOL's rule: no threshold to choose
    ref = mask_boxes(torch.from_numpy(p[:2].astype(np.float32) > 0.5), 'contour')
    assert len(sb) == 8 and all(b.shape[-1] == 4 and len(b) <= 1 for b in sb) and len(sb[0]) == len(ref[0])
    from wsol_nb.psol import build_psol
    ex = CamExplorer(ds, providers={'PSOL box': psol_box_provider(build_psol('efficientnet_lite0', None))}, background=False)
    b = ex.cache.maps('PSOL box')
    assert len(b) == 8 and all(x.shape == (1, 4) and (x >= 0).all() and (x <= 224).all() for x in b)
    s0 = ex.state; ex.w_value.value = 0.7                              # boxes do not depend on the threshold
    assert ex.state['boxes'] == s0['boxes'] and ex.state['marker_x'] is None

class FakeTrainer:
    "The contract of wsol_nb.train.Trainer the monitor relies on: cbs, fit(), thread-safe stop()."
    def __init__(self, n=100_000, dt=0.003):
        self.cbs, self.n, self.dt, self._stop, self.stopped, self.model = [], n, dt, threading.Event(), False, None
    def fit(self):
        self._stop.clear(); self.stopped = False
        for s in range(1, self.n+1):
            if self._stop.is_set(): self.stopped = True; return
            time.sleep(self.dt)
            for c in self.cbs: c.after_step(self, s, 1/s, None)
    def stop(self): self._stop.set()

def _wait(cond, timeout=60):
    t = time.time()
    while not cond():
        if time.time() - t > timeout: raise TimeoutError('condition not reached')
        time.sleep(0.01)

def test_monitor_fake_trainer_updates_and_stops(ds):
    tr = FakeTrainer()
    mon = TrainingMonitor(tr, samples=ds, predict=lambda t, x: torch.rand(len(x), 7, 7), every=5, n=3, size=64)
    p0 = mon.w_plot.value
    mon.start()
    assert mon.state['running'] and mon.w_stop.disabled is False
    _wait(lambda: mon.state['n_updates'] >= 2)
    p1, g1 = mon.w_plot.value, mon.w_grid.value
    assert p1 != p0 and len(g1) > 0
    _wait(lambda: mon.state['n_updates'] >= 3)
    assert mon.w_plot.value != p1                                     # the plot keeps updating
    mon.w_stop.click()                                                # the Stop button
    assert mon.wait(10)
    s = mon.state
    assert tr.stopped and not s['running'] and s['status'].startswith('stopped') and s['error'] is None
    assert s['steps'] == list(range(1, s['step']+1)) and s['step'] < tr.n
    assert from_png(mon.w_grid.value).shape == (64+CAPTION_PX+4, 3*(64+2)+2, 3)

def test_monitor_real_trainer(ds, tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__(); self.conv = nn.Conv2d(3, 8, 3, padding=1); self.fc = nn.Linear(8, 2)
        def forward(self, x): return self.fc(F.relu(self.conv(x)).mean((2, 3)))
    torch.manual_seed(0)
    net = Net()
    data = [(torch.rand(4, 3, 32, 32), torch.randint(0, 2, (4,))) for _ in range(4)]
    tr = Trainer(net, data, loss_func=lambda out, b: F.cross_entropy(out, b[1]), lr=0.05, epochs=10_000, progress=False,
                 ckpt=tmp_path/'ck.pt')
    def predict(t, x):  # channel-mean activation map of the conv layer, the model's "map"
        with torch.no_grad(): return F.relu(t.model.conv(F.interpolate(x, size=32))).mean(1)
    mon = TrainingMonitor(tr, samples=ds, predict=predict, every=3, n=2, size=48)
    mon.start()
    _wait(lambda: mon.state['n_updates'] >= 2)
    p = mon.w_plot.value
    _wait(lambda: mon.state['n_updates'] >= 3)
    assert mon.w_plot.value != p
    mon.stop(); assert mon.wait(30)
    s = mon.state
    assert tr.stopped and s['status'].startswith('stopped') and 'checkpoint' in s['status'] and (tmp_path/'ck.pt').exists()
    assert len(s['losses']) == s['step'] == tr.step and net.training            # train mode restored after predictions

def test_monitor_reports_errors(ds):
    def fit(cbs):
        for c in cbs: c.after_step(None, 1, 0.5, None)
        raise RuntimeError('disk full')
    mon = TrainingMonitor(fit, samples=None, every=1)
    mon.start(); assert mon.wait(10)
    assert 'RuntimeError: disk full' in mon.state['status'] and mon.state['steps'] == [1]

def test_default_explorer(tmp_path, monkeypatch):
    "CamExplorer() with no arguments: the embedded synthetic test split and the bundled EfficientNet-Lite0, CAM."
    monkeypatch.setenv('WSOL_DATA', str(tmp_path))
    ex = CamExplorer(background=False)
    s = ex.state
    assert s['method'] == 'CAM' and len(ex.cache) == 100 and ex.backbone.name == 'efficientnet_lite0'
    assert ex.cache.maps('CAM').shape == (100, 224, 224) and 0 <= s['iou'] <= 1 and len(s['curve_x']) == 41
    assert ex.wait(60) and 0 <= ex.state['maxboxacc_v2'] <= 100

def test_initial_rule_percentile(ds):
    ex = CamExplorer(ds, providers=PROV, rule='percentile', value=90, box_rule='contour', background=False)
    s = ex.state
    assert (s['rule'], s['threshold'], s['box_rule'], ex.w_value.max) == ('percentile', 90, 'contour', 100)
    np.testing.assert_allclose(np_boxes(s['boxes']), boxes_for(ex.current_map(), 'percentile', 90, 'contour'))

def test_monitor_stop_reaches_trainer_of_fit_function(ds, tmp_path):
    "Stop on a fit function that builds a Trainer: the trainer finishes its step, writes its checkpoint and returns."
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    data = [(torch.rand(2, 3, 16, 16), torch.randint(0, 2, (2,))) for _ in range(4)]
    def slow_ce(m, b): time.sleep(0.01); return F.cross_entropy(m(b[0]), b[1])
    def fit(cbs): return Trainer(net, data, step=slow_ce, max_steps=10_000, epochs=None, progress=False, ckpt=tmp_path/'f.pt', cbs=cbs).fit()
    mon = TrainingMonitor(fit, samples=ds, predict=lambda t, x: torch.rand(len(x), 7, 7), every=2, n=2, size=48)
    mon.start()
    _wait(lambda: mon.state['step'] >= 3)
    mon.w_stop.click(); assert mon.wait(30)
    s = mon.state
    assert s['error'] is None and s['status'].startswith('stopped') and 'checkpoint' in s['status'], s['status']
    assert mon.tr.stopped and 3 <= mon.tr.step == s['step'] < 10_000 and (tmp_path/'f.pt').exists()
    assert torch.load(tmp_path/'f.pt', weights_only=True)['step'] == mon.tr.step          # the final checkpoint, written at the stop
    assert isinstance(mon.result, list) and len(mon.result) == mon.tr.step                # what fit returned (the history)

def test_monitor_stop_before_trainer_exists(ds, tmp_path):
    "Stop pressed while the fit function is still preparing: its trainer stops before the first step, checkpoint written."
    go = threading.Event()
    def fit(cbs):
        go.wait(10)
        return Trainer(nn.Linear(2, 2), [torch.rand(2, 2)], loss_func=lambda o, b: o.sum(), epochs=100, progress=False,
                       ckpt=tmp_path/'g.pt', cbs=cbs).fit()
    mon = TrainingMonitor(fit, predict=lambda t, x: torch.rand(len(x), 7, 7))
    mon.start(); mon.stop(); go.set(); assert mon.wait(30)
    assert mon.tr.stopped and mon.tr.step == 0 and (tmp_path/'g.pt').exists() and mon.state['status'].startswith('stopped at step 0')

@pytest.fixture(scope='module')
def spol_runs(tmp_path_factory):
    "MFF-Net1 watched and stopped after 2 steps, its pseudo masks, MFF-Net2 watched for 3 steps (8 images of 64 px)."
    from wsol_nb.spol import train_spol_cam, make_pseudo_masks, train_spol_seg
    tmp = tmp_path_factory.mktemp('spol')
    root = make_synthetic(tmp/'syn', n_classes=2, n_train=4, n_test=2, size=64)
    sds = load_dataset(root, 'cub', split='test')
    kw = dict(preset='synthetic', resize=64, crop=56, progress=False)
    m1 = TrainingMonitor(lambda cbs: train_spol_cam(root, out=tmp/'cam', max_steps=50, cbs=cbs, **kw), samples=sds, every=1,
                         n=4, input_size=64, size=64)
    g0 = m1.w_grid.value
    m1.start(); _wait(lambda: m1.state['step'] >= 2); m1.stop(); assert m1.wait(120)
    pm = make_pseudo_masks(m1.result, root, out=tmp/'masks', size=64, progress=False)
    m2 = TrainingMonitor(lambda cbs: train_spol_seg(root, pm, out=tmp/'seg', max_steps=3, cbs=cbs, **kw), samples=sds,
                         every=1, n=4, input_size=64, size=64)   # default predict: chosen for MFF-Net2
    m2.start(); assert m2.wait(120)
    return dict(tmp=tmp, m1=m1, m2=m2, g0=g0, ds=sds)

def test_monitor_spol_cam(spol_runs):
    from wsol_nb.spol import gt_cams
    from wsol_nb.extract import normalize_maps
    m1, tmp = spol_runs['m1'], spol_runs['tmp']
    s = m1.state
    assert s['error'] is None and s['status'].startswith('stopped') and 'checkpoint' in s['status'], s['status']
    assert 2 <= s['step'] < 50 and m1.tr.stopped and (tmp/'cam'/'ckpt.pt').exists()
    assert s['n_updates'] == s['step'] + 1 and s['iou_steps'] == s['steps'] + [s['step']]   # every step, and once at the end
    assert m1.w_grid.value != spol_runs['g0'] and len(s['ious']) == len(s['iou_steps'])
    x = torch.from_numpy(m1.images).permute(0, 3, 1, 2).float()/255
    maps, boxes = m1.predict_samples()
    np.testing.assert_allclose(maps, normalize_maps(gt_cams(m1.result, x, m1.labels)).numpy(), atol=1e-4)   # GT-class CAM
    assert len(boxes) == 4 and all(b.shape[-1] == 4 for b in boxes)

def test_monitor_spol_seg(spol_runs):
    from wsol_nb.spol import fg_probs
    m2, tmp = spol_runs['m2'], spol_runs['tmp']
    s = m2.state
    assert s['status'].startswith('finished at step 3') and 'checkpoint' in s['status'] and (tmp/'seg'/'ckpt.pt').exists()
    assert s['steps'] == [1, 2, 3] and s['iou_steps'] == [1, 2, 3, 3] and not m2.tr.stopped
    x = torch.from_numpy(m2.images).permute(0, 3, 1, 2).float()/255
    maps, boxes = m2.predict_samples()
    p = fg_probs(m2.result, x).numpy()
    np.testing.assert_allclose(maps, p, atol=1e-5)                     # probabilities as they are, not min-max rescaled
    thr = m2.result.run_config['threshold']                           # after the run the model carries its preset's threshold
    from wsol_nb.extract import mask_boxes
    for m, b in zip(p, boxes): np.testing.assert_allclose(b, mask_boxes(torch.from_numpy(m[None] > thr), 'contour')[0].numpy())
    g = from_png(m2.w_grid.value)
    assert g.shape == (64+CAPTION_PX+4, 4*(64+2)+2, 3) and g.std() > 10

def test_psol_box_provider_uses_training_size(ds):
    from wsol_nb.psol import build_psol, psol_protocol
    torch.manual_seed(0)
    m = build_psol('efficientnet_lite0', None)
    m.run_config = dict(size=96)                                            # as load_psol sets it from the run's config.json
    seen = []; h = m.register_forward_pre_hook(lambda mod, a: seen.append(tuple(a[0].shape[-2:])))
    c = MapCache(ds, providers={'PSOL box': psol_box_provider(m)})
    b = c.maps('PSOL box'); h.remove()
    assert set(seen) == {(96, 96)} and len(b) == 8 and all(x.shape == (1, 4) and (x >= 0).all() and (x <= 224).all() for x in b)
    del m.run_config; m.protocol = psol_protocol(128)                      # a model fresh from train_psol carries its protocol
    seen.clear(); h = m.register_forward_pre_hook(lambda mod, a: seen.append(tuple(a[0].shape[-2:])))
    MapCache(ds, providers={'PSOL box': psol_box_provider(m)}).maps('PSOL box'); h.remove()
    assert set(seen) == {(128, 128)}

def test_register_provider_reaches_open_explorers(ds):
    ex = CamExplorer(ds, method='CAM', background=False)                                 # built on PROVIDERS
    own = CamExplorer(ds, providers=PROV, background=False)
    try:
        register_provider('later', oracle)
        assert 'later' in [v for _, v in ex.w_method.options] and 'later' not in own.providers
        ex.w_method.value = 'later'
        assert ex.state['method'] == 'later' and ex.state['iou'] > 0.5
        ex.w_protocol.value = 'psol'                                    # a second cache picks up later changes too
        i0, m0 = ex.state['iou'], ex.current_map()
        register_provider('later', shifted)                             # replaced while shown: maps recomputed, redrawn
        assert ex.state['method'] == 'later' and ex.state['iou'] < i0 - 0.1 and np.abs(ex.current_map() - m0).max() > 0.2
        new = shifted(ex.cache)[ex.index]; new = (new - new.min())/(new.max() - new.min())
        np.testing.assert_allclose(ex.current_map(), new, atol=2e-3)    # the new provider's map is shown
        assert all(c.providers['later'] is shifted for c in ex.caches.values())
        register_provider('later', None)
        assert ex.state['method'] == 'CAM' and ('later (unavailable)', 'later') in ex.w_method.options
    finally: PROVIDERS.pop('later', None); ex.wait(60); own.wait(60)

# -- the explorer computes off the kernel's thread ------------------------------------------------------------------------
def test_explorer_appears_at_once_then_fills_in(ds):
    t = time.perf_counter()
    ex = CamExplorer(ds, providers={'slow': slow, 'oracle': oracle})
    assert time.perf_counter() - t < 1.0                                  # shown before any map exists
    s = ex.state
    assert s['method'] is None and s['stale'] and s['wanted'] == 'slow' and ex.w_bar.layout.visibility == 'visible'
    _wait(lambda: '/8, ETA' in ex.w_progress.value, 30)                    # done/total with an ETA inside the widget
    assert ex.wait(60) and ex.state['method'] == 'slow' and not ex.state['stale'] and ex.w_bar.layout.visibility == 'hidden'

def test_method_switch_in_background_keeps_controls_and_image(ds):
    ex = CamExplorer(ds, providers={'oracle': oracle, 'slow': lambda c: slow(c, 0.5), 'shifted': shifted})
    assert ex.wait(60)
    ex.w_pos.value = 5; i5 = ex.state['index']
    n = ex.state['n_progress']; t = time.perf_counter()
    ex.w_method.value = 'slow'
    assert time.perf_counter() - t < 0.2 and ex.state['n_progress'] > n   # first progress at once
    s = ex.state
    assert s['stale'] and s['method'] == 'oracle' and s['wanted'] == 'slow' and 'wsol-stale' in ex.panels._dom_classes
    r0 = ex.w_readout.value; ex.w_value.value = 0.7                        # the threshold still works on what is shown
    assert ex.w_readout.value != r0 and 'until slow' in ex.w_readout.value and ex.state['threshold'] == 0.7
    ex.w_pos.value = 4; ex.w_pos.value = 5                                # so does the image slider
    assert ex.wait(60)
    s = ex.state
    assert s['method'] == 'slow' and not s['stale'] and s['index'] == i5 and 'wsol-stale' not in ex.panels._dom_classes
    ex.w_protocol.value = 'psol'; assert ex.wait(60)                       # protocol and rule changes keep the image too
    ex.w_rule.value = 'percentile'; assert ex.wait(60)
    assert ex.state['index'] == i5 and ex.state['protocol'] == 'psol'

def test_newer_request_cancels_older(ds):
    ex = CamExplorer(ds, providers={'oracle': oracle, 'slow': lambda c: slow(c, 0.3), 'shifted': shifted})
    assert ex.wait(60)
    ex.w_method.value = 'slow'
    _wait(lambda: ex.state['progress'][0] >= 1, 30)
    ex.w_method.value = 'shifted'                                          # slow is dropped at its next batch
    assert ex.wait(60) and ex.state['method'] == 'shifted' and ('slow', ()) not in ex.cache._maps

def test_panels_at_display_size_legend_and_score(ds):
    ex = CamExplorer(ds, providers=PROV, zoom=1.5, background=False)
    assert from_png(ex.w_image.value).shape == (336, 336, 3) and ex.w_image.layout.width == '336px'
    assert from_png(ex.w_curve.value).shape[:2] == (300, 440) and ex.w_curve.layout.width == '440px'
    assert 'ground truth (wsoleval' in ex.w_legend.value and 'predicted (oracle)' in ex.w_legend.value
    assert 'GT-known@0.5 (wsoleval)' in ex.w_readout.value or 'wsoleval' in ex.w_readout.value
    ex.w_method.value = 'boxes'
    s = ex.state
    assert s['score'] == pytest.approx(1.0) and ex.w_curve.layout.display == 'none' and '100.0%' in ex.w_score.value
    assert s['disabled'] == dict(rule=True, value=True, box=True, grid=True) and 'no threshold' in ex.w_readout.value
    ex.w_method.value = 'oracle'
    assert not any(ex.state['disabled'].values()) and ex.w_curve.layout.display is None

def test_gradcam_note():
    from wsol_nb.backbones import get_backbone
    bb = get_backbone('efficientnet_lite0', None)
    assert 'Grad-CAM = CAM' in coincide_note('Grad-CAM', bb) and coincide_note('CAM', bb) == coincide_note('Grad-CAM++', bb) == ''

# -- the monitor: live status, restart, never over a trained checkpoint -------------------------------------------------------
def test_monitor_status_line_and_ticks_during_slow_steps(ds):
    tr = FakeTrainer(n=100_000, dt=0.35)
    tr.total, tr.epoch = 1000, 0
    mon = TrainingMonitor(tr, samples=ds, predict=lambda t, x: torch.rand(len(x), 7, 7), n=2, size=48, tick=0.1)
    mon.start()
    _wait(lambda: mon.state['step'] >= 2, 30)
    r = mon.state['n_redraws']; time.sleep(1.5)
    assert mon.state['n_redraws'] >= r + 3                                 # redrawn between steps, however slow they are
    st = mon.status
    assert st.startswith('running: step ') and '/1000' in st and 'epoch 1' in st and 'loss' in st and 'ETA' in st, st
    mon.stop(); assert mon.wait(10)
    mon.start(); _wait(lambda: mon.state['step'] >= 1, 30)
    assert mon.state['steps'][0] == 1                                      # the loss chart restarts with each run
    mon.stop(); assert mon.wait(10)

def test_monitor_psol_start_never_overwrites(ds, tmp_path):
    "PSOL watched with `out=`: Stop writes a checkpoint, Start resumes it; Start on the finished run makes a new folder."
    from wsol_nb.psol import train_psol
    root = make_synthetic(tmp_path/'syn', n_classes=2, n_train=4, n_test=2, size=64)
    fit = lambda cbs, **run: train_psol(root, boxes='gt', weights=None, size=64, batch_size=4, max_steps=4, cbs=cbs, progress=False, **run)
    mon = TrainingMonitor(fit, out=tmp_path/'psol', samples=load_dataset(root, 'cub', split='test'), every=1, n=2, input_size=64, size=64)
    assert 'new run in' in mon.status
    mon.start(); _wait(lambda: mon.state['step'] >= 1, 60); mon.stop(); assert mon.wait(60)
    s = mon.state
    assert s['status'].startswith('stopped') and 'resuming the stopped run' in s['status'], s['status']
    k = s['step']; assert plan_start(tmp_path/'psol')[1]
    mon.start(); assert mon.wait(60)                                       # resumed to the end
    assert mon.state['steps'] == list(range(k+1, 5)) and mon.state['status'].startswith('finished at step 4')
    ck = (tmp_path/'psol'/'ckpt.pt').read_bytes()
    mon.start(); assert mon.wait(60)                                       # finished: a new folder, the trained one untouched
    assert mon.state['run_dir'] == str(tmp_path/'psol-2') and (tmp_path/'psol'/'ckpt.pt').read_bytes() == ck
    assert mon.state['tile_ious'] is not None and len(mon.state['tile_ious']) == 2

def test_explorer_on_a_vision_transformer(ds):
    "A ViT (random weights) in the explorer: no CAM, so Grad-CAM first; rollout and Eigen-CAM on its 14x14 patch grid."
    from wsol_nb.backbones import get_backbone
    ex = CamExplorer(ds, backbone=get_backbone('vit_b_16', None), background=False)
    try:
        assert ex.state['method'] == 'Grad-CAM' and ex.state['grid'] == (14, 14) and not ex.message
        for m in ('Attention rollout', 'Eigen-CAM', 'LayerCAM'):
            ex.w_method.value = m
            assert ex.state['method'] == m and ex.cache.maps(m).shape == (8, 224, 224) and not ex.message, (m, ex.message)
        assert ('Attention rollout (transformers)', 'Attention rollout') in ex.w_method.options
    finally: assert ex.wait(60)           # the BoxAcc curves' own thread is done before the test ends
