"Two CPU processes under torchrun (gloo): all_reduce_sum, DistributedSampler, DDP training, rank-0-only checkpoint."
import json, os, socket, subprocess, sys
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]

# Per-rank statistics as DDT accumulates them (count, feature sum, sum of outer products); the test recomputes them.
STATS = '''
def stats(r):
    g = torch.Generator().manual_seed(100 + r)
    f = torch.randn(5 + r, 4, generator=g, dtype=torch.float64)
    return {'n': torch.tensor(f.shape[0]), 'sum': f.sum(0), 'outer': f.T @ f}
'''

SCRIPT = '''
import json, sys
from pathlib import Path
import torch, torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from wsol_nb.train import *
torch.set_num_threads(1)
out = Path(sys.argv[1])
assert init_dist('gloo')
r, w = rank(), world_size()
''' + STATS + '''
s = all_reduce_sum(stats(r))
if is_main(): torch.save(s, out/'stats.pt')

class DS(Dataset):
    def __init__(self, n=40):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g)
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i], self.y[i], i

seen = torch.zeros(40)
def count(tr, step, loss, b):
    if tr.epoch == 0: seen.index_add_(0, b[2], torch.ones(len(b[2])))
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
tr = Trainer(net, DataLoader(DS(), batch_size=4, shuffle=True), lambda o, b: nn.functional.cross_entropy(o, b[1]),
             lr=0.05, epochs=2, device='cpu', ckpt=out/'last.pt', ckpt_every=3, cbs=[Callback(after_step=count)])
tr.log('log line from the trainer')
tr.fit()
params = torch.cat([p.detach().flatten() for p in net.parameters()])
info = dict(rank=r, world=w, main=is_main(), step=tr.step, n_batches=tr.n_batches, ddp=type(tr.dmodel).__name__,
            sampler=type(tr._skip.bs.sampler).__name__, loss=[h['loss'] for h in tr.history])
(out/f'rank{r}.json').write_text(json.dumps(info))
seen, psum = all_reduce_sum([seen, params])
if is_main(): torch.save(dict(seen=seen, params=params, psum=psum), out/'train.pt')
close_dist()
'''

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_torchrun_two_processes(tmp_path):
    script = tmp_path/'ddp.py'; script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT), GLOO_SOCKET_IFNAME='lo')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()), str(script), str(tmp_path)]
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log

    # (1) all_reduce_sum equals the single-process sum
    ns = {'torch': torch}; exec(STATS, ns)
    want = {k: ns['stats'](0)[k] + ns['stats'](1)[k] for k in ('n', 'sum', 'outer')}
    got = torch.load(tmp_path/'stats.pt', weights_only=True)
    assert got['n'] == 11 and got['outer'].dtype == torch.float64
    for k in want: torch.testing.assert_close(got[k], want[k], rtol=1e-12, atol=1e-12)

    # (2) DDP training: disjoint shards, same weights on both ranks, one checkpoint written by rank 0
    r0, r1 = [json.loads((tmp_path/f'rank{r}.json').read_text()) for r in (0, 1)]
    assert (r0['main'], r1['main']) == (True, False) and r0['world'] == r1['world'] == 2
    assert r0['ddp'] == 'DistributedDataParallel' and r0['sampler'] == 'DistributedSampler'
    assert r0['n_batches'] == r1['n_batches'] == 5 and r0['step'] == r1['step'] == 10  # 40 items / 2 ranks / bs 4, 2 epochs
    assert r0['loss'] == r1['loss']  # the logged loss is the mean over ranks
    t = torch.load(tmp_path/'train.pt', weights_only=True)
    assert torch.equal(t['seen'], torch.ones(40))         # each item seen once per epoch, by one rank
    assert torch.equal(t['psum'], 2 * t['params'])        # identical weights on both ranks
    ck = torch.load(tmp_path/'last.pt', weights_only=True)
    assert ck['step'] == 10 and ck['meta']['world_size'] == 2 and len(ck['history']) == 10
    assert not any(k.startswith('module.') for k in ck['model'])
    assert torch.equal(torch.cat([v.flatten() for k, v in ck['model'].items() if 'running' not in k and 'num_batches' not in k]), t['params'])
    assert sorted(f.name for f in tmp_path.iterdir()) == ['ddp.py', 'last.pt', 'rank0.json', 'rank1.json', 'stats.pt', 'train.pt']
    assert p.stdout.count('log line from the trainer') == 1, log  # rank-0-only logging
