"A CPU run killed with SIGKILL after a checkpoint and resumed ends bit-identical to an uninterrupted run."
import os, signal, subprocess, sys, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]

# Shuffled data, random augmentation drawing from python `random` and numpy, dropout and BatchNorm (torch RNG, buffers),
# momentum + nesterov + weight decay, two parameter groups, a cosine schedule and gradient clipping: every piece of
# state that resume must restore is in play. 6 batches/epoch, 5 epochs, a checkpoint every 4 steps.
SCRIPT = '''
import random, sys, time
import numpy as np, torch, torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from wsol_nb.train import Trainer, Callback, param_groups, split_params, set_seed
torch.set_num_threads(1)

class DS(Dataset):
    def __init__(self, n=48):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.rand(n, 3, 12, 12, generator=g), torch.randint(0, 3, (n,), generator=g)
    def __len__(self): return len(self.x)
    def __getitem__(self, i):
        x = self.x[i].flip(-1) if random.random() < 0.5 else self.x[i]
        return x + float(np.random.normal(0, 0.05)), self.y[i]

def run(ckpt, pause=0., resume=True):
    set_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Dropout(0.3), nn.Linear(8, 3))
    tr = Trainer(net, DataLoader(DS(), batch_size=8, shuffle=True), lambda o, b: nn.functional.cross_entropy(o, b[1]),
                 params=param_groups(*split_params(net, '6'), head_lr_mult=10), lr=0.05, mom=0.9, nesterov=True,
                 wd=1e-3, sched='cos', clip=1.0, epochs=5, ckpt=ckpt, ckpt_every=4, resume=resume, progress=False,
                 cbs=[Callback(after_step=lambda tr, s, l, b: time.sleep(pause))])
    tr.fit()
    print('done', ckpt, tr.step)

if sys.argv[1] == 'victim': run(sys.argv[2], pause=0.1)   # slowed down: still running after its first checkpoint
else:
    run(sys.argv[3], resume=False)                         # the uninterrupted reference run (fresh start)
    run(sys.argv[2])                                       # resume the killed run from its last checkpoint
'''
TOTAL = 30

def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def _finish(p, timeout=60):
    out, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, out
    return out

def _strip(h): return [{k: v for k, v in r.items() if k != 'img_s'} for r in h]

def test_sigkill_resume_is_exact(tmp_path):
    script = tmp_path/'run.py'; script.write_text(SCRIPT)
    ref_ck, ck = tmp_path/'ref'/'last.pt', tmp_path/'killed'/'last.pt'
    victim = _run(script, 'victim', ck)
    deadline = time.time() + 60
    while not ck.exists():
        assert victim.poll() is None, victim.communicate()[0]
        assert time.time() < deadline, 'no checkpoint written within 60 s'
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL); victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    mid = torch.load(ck, weights_only=True)
    assert 0 < mid['step'] < TOTAL and (mid['step'] % 4 == 0 or mid['step'] % 6 == 0), mid['step']  # killed mid-run, after a checkpoint (every 4 steps or an epoch's end)
    assert len(mid['history']) == mid['step']

    out = _finish(_run(script, 'resume', ck, ref_ck))  # a fresh process: reference run, then resume to the end
    assert f"resumed from {ck} at step {mid['step']}" in out, out
    assert f'done {ref_ck} {TOTAL}' in out and f'done {ck} {TOTAL}' in out, out
    assert [f.name for f in ref_ck.parent.iterdir()] == ['last.pt']  # no temp file left behind

    a, b = torch.load(ref_ck, weights_only=True), torch.load(ck, weights_only=True)
    assert a['step'] == b['step'] == TOTAL and a['epoch'] == b['epoch'] == 5
    assert a['model'].keys() == b['model'].keys()
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k
    for i, s in a['opt']['state'].items(): assert torch.equal(s['momentum_buffer'], b['opt']['state'][i]['momentum_buffer']), i
    assert a['opt']['param_groups'] == b['opt']['param_groups'] and a['sched'] == b['sched']
    assert _strip(a['history']) == _strip(b['history']) and len(a['history']) == TOTAL
    assert torch.equal(a['rng']['torch'], b['rng']['torch']) and torch.equal(a['rng']['numpy']['keys'], b['rng']['numpy']['keys'])
    assert torch.equal(a['rng']['python']['state'], b['rng']['python']['state'])
