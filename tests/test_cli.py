"End-to-end runs of the console scripts as a user types them, on a tiny embedded dataset."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest

BIN = Path(sys.executable).parent

def run(*args, ok=True):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([str(BIN/args[0]), *map(str, args[1:])], capture_output=True, text=True, env=env, timeout=600)
    if ok: assert r.returncode == 0, f"{args[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from wsol_nb.synthetic import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('cli')/'data', n_classes=2, n_train=4, n_test=3, size=64)

def test_help_explains_every_command():
    for s in ('wsol-eval', 'wsol-cam', 'wsol-ddt', 'wsol-train', 'wsol-predict', 'wsol-demo'):
        r = run(s, '--help')
        assert 'usage' in r.stdout.lower() and len(r.stdout) > 200, s
    for sub in ('psol', 'cls', 'spol-cam', 'spol-seg'): assert '--data' in run('wsol-train', sub, '--help').stdout

def test_cam_then_eval(data, tmp_path):
    run('wsol-cam', '--data', data, '--backbone', 'efficientnet_lite0', '--method', 'gradcam', '--target', 'top1',
        '--out', tmp_path/'maps.npz', '--predictions', tmp_path/'pred.json', '--size', 64)
    with np.load(tmp_path/'maps.npz') as z: assert len(z.files) == 6
    for p in ('wsoleval', 'psol', 'spol'):
        run('wsol-eval', '--data', data, '--maps', tmp_path/'maps.npz', '--protocol', p, '--json', tmp_path/f'{p}.json')
        r = json.loads((tmp_path/f'{p}.json').read_text())
        assert r['protocol'] == p and r['n_images'] == 6 and r['seconds'] >= 0
        assert ('MaxBoxAccV2' if p == 'wsoleval' else 'GT-known') in r

def test_eval_reports_bad_input(data, tmp_path):
    (tmp_path/'boxes.json').write_text('{"nope.jpg": [[0, 0, 5, 5]]}')
    r = run('wsol-eval', '--data', data, '--boxes', tmp_path/'boxes.json', '--protocol', 'psol', ok=False)
    assert r.returncode != 0 and 'boxes.json' in (r.stdout + r.stderr)

def test_ddt_train_predict_eval(data, tmp_path):
    run('wsol-ddt', '--data', data, '--backbone', 'efficientnet_lite0', '--size', 64, '--out', tmp_path/'ddt', '--save-maps')
    boxes = json.loads((tmp_path/'ddt'/'boxes.json').read_text())
    assert len(boxes['boxes']) == 8 and (tmp_path/'ddt'/'localization.txt').exists()
    r = run('wsol-ddt', '--data', data, '--backbone', 'efficientnet_lite0', '--size', 64, '--out', tmp_path/'ddt')
    assert '0 computed' in r.stdout  # a rerun skips finished classes
    common = ['--data', data, '--max-steps', 1, '--batch-size', 4, '--no-progress']
    run('wsol-train', 'psol', '--boxes', tmp_path/'ddt'/'boxes.json', '--out', tmp_path/'psol', *common)
    run('wsol-predict', '--model', tmp_path/'psol', '--data', data, '--boxes-out', tmp_path/'b.json')
    run('wsol-eval', '--data', data, '--boxes', tmp_path/'b.json', '--protocol', 'psol', '--json', tmp_path/'e.json')
    assert json.loads((tmp_path/'e.json').read_text())['n_images'] == 6

def test_demo_quick(tmp_path):
    r = run('wsol-demo', '--out', tmp_path/'demo', '--quick', '--steps', 'baselines', '--no-progress')
    rep = (tmp_path/'demo'/'report.md').read_text()
    assert 'Full image' in rep and 'Centred box' in rep and 'MaxBoxAccV2' in rep
    assert json.loads((tmp_path/'demo'/'report.json').read_text())['config']['steps'] == ['baselines']
