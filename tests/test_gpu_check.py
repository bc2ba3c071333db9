"`benchmarks/gpu_check.sh --dry-run`: every step of the GPU check runs on the CPU, CI-sized, and reaches the summary."
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ['ddt', 'train', 'demo', 'ddp', 'eval']

def test_gpu_check_dry_run(tmp_path):
    out = tmp_path/'results.md'
    env = dict(os.environ, WSOL_PYTHON=sys.executable, TMPDIR=str(tmp_path), OMP_NUM_THREADS='1')
    r = subprocess.run(['bash', str(ROOT/'benchmarks'/'gpu_check.sh'), '--dry-run', '--out', str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    summary = r.stdout.split('## summary (CPU (dry run))', 1)[1]
    rows = [[c.strip() for c in l.split('|')[1:-1]] for l in summary.splitlines() if l.startswith('| ')][1:]
    assert [x[0] for x in rows] == STEPS, summary
    assert all(x[4] == 'ok' and x[1] for x in rows), summary           # every step ran and printed its figure
    assert 'img/s' in rows[0][1] and 'loop / bare 0.' in rows[1][1] and 'done at step 2' in rows[3][1], summary
    assert '100 maps' in rows[4][1] and 'peak RSS' in rows[4][1], summary
    text = out.read_text()
    assert text.startswith('# GPU check: CPU (dry run)') and '| ddp |' in text and '## eval' in text
