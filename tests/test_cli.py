"End-to-end runs of the console scripts as a user types them, on a tiny embedded dataset."
import contextlib, io, json, os, re, socket, subprocess, sys
from pathlib import Path
import numpy as np, pytest

BIN = Path(sys.executable).parent
COMMANDS = ('wsol-eval', 'wsol-cam', 'wsol-ddt', 'wsol-train', 'wsol-predict', 'wsol-demo')

def _env(): return dict(os.environ, OMP_NUM_THREADS='1')

def _check(args, r, ok):
    if ok: assert r.returncode == 0, f"{args[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r

def run(*args, ok=True):
    r = subprocess.run([str(BIN/args[0]), *map(str, args[1:])], capture_output=True, text=True, env=_env(), timeout=600)
    return _check(args, r, ok)

def run_all(*cmds, ok=True):
    "Run several commands at once (each start imports torch); their `CompletedProcess`es."
    ps = [subprocess.Popen([str(BIN/c[0]), *map(str, c[1:])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=_env()) for c in cmds]
    out = []
    for c, p in zip(cmds, ps):
        o, e = p.communicate(timeout=600)
        out.append(_check(c, subprocess.CompletedProcess(p.args, p.returncode, o, e), ok))
    return out

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from wsol_nb.synthetic import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('cli')/'data', n_classes=2, n_train=4, n_test=2, size=64)

def test_help_explains_every_command():
    helps = dict(zip(COMMANDS, (r.stdout for r in run_all(*[[s, '--help'] for s in COMMANDS]))))
    subs = ('psol', 'cls', 'spol-cam', 'spol-seg')
    helps.update(zip((f'wsol-train {c}' for c in subs), (r.stdout for r in run_all(*[['wsol-train', c, '--help'] for c in subs]))))
    for s, h in helps.items():
        desc = h.split('\n\n')[1]                       # the paragraph after the usage lines says what the step does
        assert h.lower().startswith('usage') and len(desc) > 60, (s, desc)
        assert f'example:\n  {s} ' in h, s               # every --help ends with a complete example
        if s != 'wsol-train': assert '--data' in h, s
        assert not re.findall(r'--[a-z0-9]+_[a-z0-9_]*', h), (s, re.findall(r'--[a-z0-9]+_[a-z0-9_]*', h))  # dashed flags only
    for s, flags in {'wsol-cam': ['--batch-size', '--num-classes', '--no-progress'],
                     'wsol-ddt': ['--batch-size', '--class-agnostic', '--save-maps', '--channels-last'],
                     'wsol-eval': ['--drop-no-contour'], 'wsol-train cls': ['--size'], 'wsol-train psol': ['--size']}.items():
        assert all(f in helps[s] for f in flags), s

def test_cam_then_eval(data, tmp_path):
    run('wsol-cam', '--data', data, '--backbone', 'efficientnet_lite0', '--method', 'gradcam', '--target', 'top1',
        '--out', tmp_path/'maps.npz', '--predictions', tmp_path/'pred.json', '--size', 64,
        '--batch_size', 2, '--no-progress')   # an underscore spelling still works (hidden from --help)
    with np.load(tmp_path/'maps.npz') as z: assert len(z.files) == 4
    res = {}
    for p in ('wsoleval', 'psol', 'spol'):
        run('wsol-eval', '--data', data, '--maps', tmp_path/'maps.npz', '--protocol', p, '--json', tmp_path/f'{p}.json')
        r = res[p] = json.loads((tmp_path/f'{p}.json').read_text())
        assert r['protocol'] == dict(psol='psol_cub').get(p, p) and r['n_images'] == 4 and r['seconds'] >= 0 and r['dropped_no_contour'] == 0
        assert ('MaxBoxAccV2' if p == 'wsoleval' else 'GT-known') in r

def test_every_map_method_and_a_vit_end_to_end(data, tmp_path):
    "The newer map methods through wsol-cam on the embedded data, and a ViT (random weights) through wsol-cam and wsol-eval."
    cases = dict(layercam=['--tap', 'stage5,head'], xgradcam=[], hirescam=['--norm', 'minmax'], eigencam=['--target', 'gt'],
                 scorecam=['--tap', 'stage3', '--variant', 'libraries', '--score-batch', 16])
    run_all(*[['wsol-cam', '--data', data, '--method', m, '--target', 'top1', *extra, '--out', tmp_path/f'{m}.npz', '--size', 64,
               '--no-progress'] for m, extra in cases.items()])
    for m in cases:
        with np.load(tmp_path/f'{m}.npz') as z: assert len(z.files) == 4 and all(abs(z[k].max() - 1) < 1e-5 for k in z.files), m
        cfg = json.loads((tmp_path/f'{m}_config.json').read_text())
        assert cfg['method'] == m and cfg['target'] == (None if m == 'eigencam' else 'top1'), cfg
    vit = ['wsol-cam', '--data', data, '--backbone', 'vit_b_16', '--weights', 'none', '--target', 'top1', '--no-progress']
    for m in ('rollout', 'gradcam'): run(*vit, '--method', m, '--out', tmp_path/f'vit_{m}.npz')
    for m in ('rollout', 'gradcam'):
        run('wsol-eval', '--data', data, '--maps', tmp_path/f'vit_{m}.npz', '--protocol', 'wsoleval', '--json', tmp_path/f'vit_{m}.json')
        r = json.loads((tmp_path/f'vit_{m}.json').read_text()); assert r['n_images'] == 4 and 'MaxBoxAccV2' in r
    assert json.loads((tmp_path/'vit_gradcam_config.json').read_text())['tap'] == 'block11'
    bad = run(*vit, '--method', 'cam', '--out', tmp_path/'x.npz', ok=False)
    assert bad.returncode == 1 and 'has no GAP + fc head' in bad.stderr and 'Traceback' not in bad.stderr
    bad = run(*vit, '--size', 64, '--out', tmp_path/'x.npz', '--method', 'gradcam', ok=False)
    assert bad.returncode == 1 and 'use --size 224' in bad.stderr
    bad = run('wsol-cam', '--data', data, '--tap', 'stage9', '--out', tmp_path/'x.npz', '--method', 'gradcam', '--size', 64, ok=False)
    assert bad.returncode == 1 and "has no tap or module 'stage9'" in bad.stderr and 'Traceback' not in bad.stderr
    bad = run('wsol-cam', '--data', data, '--method', 'rollout', '--out', tmp_path/'r.npz', '--size', 64, ok=False)   # checked before any image
    assert bad.returncode == 1 and bad.stderr.count('\n') == 1 and 'needs a transformer' in bad.stderr and not (tmp_path/'r.npz').exists()

def test_eval_drop_no_contour(data, tmp_path):
    "SPOL's option: images whose map gives no contour leave the mean; the report counts them."
    from wsol_nb.data import load_dataset
    ids = [r.id for r in load_dataset(data, 'cub', 'test').records]
    g = np.random.default_rng(0)
    maps = {i: g.random((16, 16)).astype(np.float32) for i in ids}
    maps[ids[0]] = np.zeros((16, 16), np.float32)   # no contour at any threshold
    np.savez(tmp_path/'m.npz', **maps)
    base = ['wsol-eval', '--data', data, '--maps', tmp_path/'m.npz', '--protocol', 'spol']
    keep, drop, bad = run_all(base + ['--json', tmp_path/'keep.json'], base + ['--drop-no-contour', '--json', tmp_path/'drop.json'],
                              base[:-1] + ['psol', '--drop-no-contour'], ok=False)
    assert keep.returncode == drop.returncode == 0, keep.stderr + drop.stderr
    k, d = (json.loads((tmp_path/f).read_text()) for f in ('keep.json', 'drop.json'))
    assert (k['n_no_contour'], k['dropped_no_contour'], k['n_evaluated']) == (1, 0, 4)
    assert (d['dropped_no_contour'], d['n_evaluated'], d['config']['drop_no_contour']) == (d['n_no_contour'], 3, True)
    assert d['GT-known'] == pytest.approx(k['GT-known'] * 4 / 3)   # the same hits over 3 images instead of 4
    assert 'misses; --drop-no-contour leaves them out' in keep.stdout and 'metrics over 3 images' in drop.stdout
    assert bad.returncode == 1 and '--protocol spol only' in bad.stderr and 'Traceback' not in bad.stderr

def test_eval_reports_bad_input(data, tmp_path):
    (tmp_path/'boxes.json').write_text('{"nope.jpg": [[0, 0, 5, 5]]}')
    r = run('wsol-eval', '--data', data, '--boxes', tmp_path/'boxes.json', '--protocol', 'psol', ok=False)
    assert r.returncode != 0 and 'boxes.json' in (r.stdout + r.stderr)

def test_ddt_train_predict_eval(data, tmp_path):
    run('wsol-ddt', '--data', data, '--backbone', 'efficientnet_lite0', '--size', 64, '--out', tmp_path/'ddt', '--save-maps')
    boxes = json.loads((tmp_path/'ddt'/'boxes.json').read_text())
    assert len(boxes['boxes']) == 8 and (tmp_path/'ddt'/'localization.txt').exists()
    r = run('wsol-ddt', '--data', data, '--backbone', 'efficientnet_lite0', '--size', 64, '--out', tmp_path/'ddt',
            '--batch_size', 4)   # the old underscore spelling
    assert '0 computed' in r.stdout  # a rerun skips finished classes
    common = ['--data', data, '--max-steps', 1, '--batch-size', 4, '--no-progress']
    run('wsol-train', 'psol', '--boxes', tmp_path/'ddt'/'boxes.json', '--out', tmp_path/'psol', '--size', 64, *common)
    assert json.loads((tmp_path/'psol'/'config.json').read_text())['size'] == 64
    run('wsol-predict', '--model', tmp_path/'psol', '--data', data, '--boxes-out', tmp_path/'b.json')
    run('wsol-eval', '--data', data, '--boxes', tmp_path/'b.json', '--protocol', 'psol', '--json', tmp_path/'e.json')
    assert json.loads((tmp_path/'e.json').read_text())['n_images'] == 4

def test_train_cls_size(data, tmp_path):
    from wsol_nb.psol import PRESETS
    P = PRESETS['synthetic']
    run('wsol-train', 'cls', '--data', data, '--out', tmp_path/'cls', '--size', 48, '--max-steps', 1, '--batch-size', 4, '--no-progress')
    cfg = json.loads((tmp_path/'cls'/'config.json').read_text())
    assert (cfg['kind'], cfg['size'], cfg['resize']) == ('classifier', 48, round(48 * P.resize / P.size))
    run('wsol-predict', '--model', tmp_path/'cls', '--data', data, '--maps-out', tmp_path/'m.npz')
    with np.load(tmp_path/'m.npz') as z: assert {z[k].shape for k in z.files} == {(48, 48)}

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_spol_seg_torchrun_masks_on_rank0(data, tmp_path):
    "Two CPU processes: rank 0 alone writes the pseudo masks, rank 1 waits, then both train MFF-Net2."
    common = ['--data', data, '--max-steps', 1, '--batch-size', 4, '--no-progress', '--device', 'cpu']
    run('wsol-train', 'spol-cam', '--out', tmp_path/'cam', *common)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2', '--master_addr',
           '127.0.0.1', '--master_port', str(_free_port()), '--no-python', str(BIN/'wsol-train'), 'spol-seg',
           '--cam-model', str(tmp_path/'cam'), '--out', str(tmp_path/'seg'), *map(str, common)]
    env = dict(_env(), GLOO_SOCKET_IFNAME='lo')
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    made = re.findall(r'rank (\d) (made|reused) (\d+) pseudo masks', log)
    assert made == [('0', 'made', '8')], made   # one writer: rank 0
    assert json.loads((tmp_path/'seg'/'masks'/'index.json').read_text())['n'] == 8
    assert json.loads((tmp_path/'seg'/'config.json').read_text())['kind'] == 'seg'

def test_demo_quick(tmp_path):
    r = run('wsol-demo', '--out', tmp_path/'demo', '--quick', '--steps', 'baselines', '--no-progress')
    rep = (tmp_path/'demo'/'report.md').read_text()
    assert 'Full image' in rep and 'Centred box' in rep and 'MaxBoxAccV2' in rep
    assert json.loads((tmp_path/'demo'/'report.json').read_text())['config']['steps'] == ['baselines']


# ---- runs through the real command: Ctrl-C, kill, rerun, a second process --------------------------------------------
TRAIN = ('cls', '--size', 48, '--batch-size', 4, '--epochs', 5, '--no-progress', '--workers', 0)   # 24 images: 6 steps/epoch

@pytest.fixture(scope='module')
def data24(tmp_path_factory):
    from wsol_nb.synthetic import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('runs')/'data', n_classes=2, n_train=12, n_test=1, size=48)

def _train(data, out, *extra): return ['wsol-train', *TRAIN, '--data', data, '--out', out, *extra]

def _start(args):
    return subprocess.Popen([str(BIN/args[0]), *map(str, args[1:])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())

def _wait_steps(p, out, n, timeout=120):
    "Wait until the run in `out` logged `n` steps (the process must still be running)."
    import time
    fn, t0 = Path(out)/'metrics.jsonl', time.time()
    while not (fn.exists() and len(fn.read_text().splitlines()) >= n):
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < timeout, 'the run logged too few steps'
        time.sleep(0.05)

def _model(out):
    import torch
    return torch.load(Path(out)/'ckpt.pt', weights_only=True)

def _same_run(a, b):
    import torch
    ca, cb = _model(a), _model(b)
    assert ca['step'] == cb['step'] == 30
    for k in ca['model']: assert torch.equal(ca['model'][k], cb['model'][k]), k
    la, lb = ([(r['step'], r['loss']) for r in map(json.loads, (Path(o)/'metrics.jsonl').read_text().splitlines())] for o in (a, b))
    assert la == lb and [s for s, _ in la] == list(range(1, 31))

@pytest.fixture(scope='module')
def reference(data24, tmp_path_factory):
    out = tmp_path_factory.mktemp('ref')/'run'
    run(*_train(data24, out))
    return out

def test_ctrl_c_then_resume_is_exact(data24, reference, tmp_path):
    import signal
    out = tmp_path/'run'
    p = _start(_train(data24, out)); _wait_steps(p, out, 3)
    p.send_signal(signal.SIGINT); o, e = p.communicate(timeout=120)
    assert p.returncode == 130, (o, e)
    res = json.loads((out/'result.json').read_text())
    k = res['steps']
    assert res['status'] == 'interrupted' and res['interrupted_by'] == 'SIGINT' and 3 <= k < 30 and _model(out)['step'] == k
    last = e.strip().splitlines()[-1]
    assert last.startswith(f'wsol-train cls: interrupted (SIGINT) at step {k} of 30, checkpoint in {out/"ckpt.pt"}; continue with: wsol-train cls')
    assert last.endswith('--resume') and 'Traceback' not in e
    r = run(*_train(data24, out), ok=False)                                   # a rerun without a flag refuses
    assert r.returncode == 1 and f'holds a classifier run (interrupted, step {k}): pass --resume' in r.stderr
    run(*_train(data24, out, '--resume'))
    _same_run(reference, out)

def test_kill_then_resume_is_exact(data24, reference, tmp_path):
    import signal
    out = tmp_path/'run'
    p = _start(_train(data24, out, '--ckpt-every', 2)); _wait_steps(p, out, 9)
    p.send_signal(signal.SIGKILL); p.wait(30)
    from wsol_nb.train import RunFolder
    assert RunFolder(out).status() == 'killed' and 2 <= _model(out)['step'] < 30
    r = run(*_train(data24, out), ok=False)
    assert r.returncode == 1 and 'holds a classifier run (killed' in r.stderr
    run(*_train(data24, out, '--ckpt-every', 2, '--resume'))                  # the dead process's lock does not block
    _same_run(reference, out)

def test_second_process_refused_and_sigterm(data24, tmp_path):
    import signal
    out = tmp_path/'run'
    p = _start(_train(data24, out, '--epochs', 50)); _wait_steps(p, out, 2)
    r = run(*_train(data24, out, '--resume'), ok=False)
    assert r.returncode == 1 and 'is in use: another process is training there' in r.stderr, r.stderr
    r = run(*_train(data24, out, '--overwrite'), ok=False)
    assert r.returncode == 1 and 'is in use' in r.stderr
    p.send_signal(signal.SIGTERM); o, e = p.communicate(timeout=120)
    assert p.returncode == 143 and 'interrupted (SIGTERM)' in e, (o, e)
    run(*_train(data24, out, '--overwrite', '--max-steps', 2))                # --overwrite starts again from step 0
    assert json.loads((out/'result.json').read_text())['steps'] == 2 and _model(out)['step'] == 2

def test_bad_files_are_one_line(data, tmp_path):
    (tmp_path/'ro').mkdir(); os.chmod(tmp_path/'ro', 0o500)
    (tmp_path/'run').mkdir(); (tmp_path/'run'/'config.json').write_text('{"kind": "classifier"}')
    (tmp_path/'run'/'ckpt.pt').write_bytes(b'\x80\x02truncated')
    cases = [['wsol-predict', '--model', tmp_path/'run', '--data', data, '--predictions-out', tmp_path/'p.json'],
             ['wsol-eval', '--data', data, '--maps', tmp_path/'none.npz', '--protocol', 'wsoleval']]
    if os.geteuid() != 0: cases.append(['wsol-cam', '--data', data, '--out', tmp_path/'ro'/'m.npz', '--size', 32])
    for r, c in zip(run_all(*cases, ok=False), cases):
        assert r.returncode == 1 and r.stderr.count('\n') == 1 and 'error:' in r.stderr and 'Traceback' not in r.stderr, (c, r.stderr)

def test_eval_check_sizes(tmp_path):
    "--check-sizes compares every image header with its metadata size before scoring, and names the first mismatch."
    from PIL import Image
    from wsol_nb.synthetic import make_synthetic, write_synthetic_wsoleval
    from wsol_nb.data import load_dataset
    root = make_synthetic(tmp_path/'data', n_classes=2, n_train=1, n_test=2, size=48)
    meta = write_synthetic_wsoleval(root)/'test'
    ds = load_dataset(root/'images', 'wsoleval', 'test', metadata=meta)
    np.savez(tmp_path/'m.npz', **{r.id: np.random.default_rng(0).random((8, 8)).astype(np.float32) for r in ds.records})
    args = ['wsol-eval', '--data', root/'images', '--metadata', meta, '--maps', tmp_path/'m.npz', '--protocol', 'wsoleval',
            '--check-sizes', '--quiet']
    run(*args)
    bad = ds.records[1]
    Image.new('RGB', (64, 40)).save(bad.path)
    r = run(*args, ok=False)
    assert r.returncode == 1 and 'do not match their metadata size' in r.stderr and bad.id in r.stderr, r.stderr

def test_eval_imports_no_torch(data, tmp_path):
    """wsol-eval as typed (maps under each protocol, with PxAP on CUB's masks; boxes; wsoleval metadata with --check-sizes;
    ImageNet XML) runs without importing torch or torchvision: its start-up is a small process."""
    from PIL import Image
    from wsol_nb.records import read_dataset, write_wsoleval
    recs, _, _ = read_dataset(data, split='test')
    rng = np.random.default_rng(0)
    np.savez(tmp_path/'m.npz', **{r.id: rng.random((16, 16)).astype(np.float32) for r in recs})
    (tmp_path/'b.json').write_text(json.dumps({r.id: r.boxes.tolist() for r in recs}))
    meta = write_wsoleval(recs, tmp_path/'meta')
    inet = tmp_path/'inet'/'val'/'n01'; inet.mkdir(parents=True)
    for k, r in enumerate(recs[:2]):
        Image.open(r.path).save(inet/f'v{k}.png'); (w, h), (x1, y1, x2, y2) = r.size, r.boxes[0].tolist()
        (inet/f'v{k}.xml').write_text(f'<annotation><size><width>{w}</width><height>{h}</height></size><object><name>n01</name>'
                                      f'<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object></annotation>')
    np.savez(tmp_path/'mi.npz', **{f'val/n01/v{k}.png': rng.random((16, 16)).astype(np.float32) for k in range(2)})
    j = lambda n: ['--json', str(tmp_path/f'{n}.json'), '--quiet']
    runs = [['--data', str(data), '--maps', str(tmp_path/'m.npz'), '--protocol', p] + j(p) for p in ('wsoleval', 'psol', 'spol')]
    runs += [['--data', str(data), '--boxes', str(tmp_path/'b.json'), '--protocol', 'spol', '--drop-no-contour'] + j('boxes'),
             ['--data', str(data/'images'), '--metadata', str(meta), '--maps', str(tmp_path/'m.npz'), '--protocol', 'wsoleval',
              '--check-sizes'] + j('meta'),
             ['--data', str(tmp_path/'inet'), '--maps', str(tmp_path/'mi.npz'), '--protocol', 'psol'] + j('inet')]
    code = ("import json, sys\nfrom wsol_nb.cli import eval_cli\n"
            "for a in json.loads(sys.argv[1]): sys.argv = ['wsol-eval', *a]; eval_cli()\n"
            "print(json.dumps(sorted(m for m in ('torch', 'torchvision') if m in sys.modules)))")
    r = subprocess.run([sys.executable, '-c', code, json.dumps(runs)], capture_output=True, text=True, env=_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.splitlines()[-1]) == [], r.stdout
    res = {n: json.loads((tmp_path/f'{n}.json').read_text()) for n in ('wsoleval', 'psol', 'spol', 'boxes', 'meta', 'inet')}
    assert 'PxAP' in res['wsoleval'] and res['meta']['MaxBoxAccV2'] == res['wsoleval']['MaxBoxAccV2']
    assert (res['psol']['protocol'], res['inet']['protocol'], res['inet']['n_images'], res['boxes']['GT-known']) == ('psol_cub', 'psol', 2, 100.)
