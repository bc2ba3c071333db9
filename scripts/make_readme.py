#!/usr/bin/env python
"""Render nbs/index.ipynb to README.md (markdown cells as they are, code cells fenced, text outputs kept).
nbdev 2's own `nbdev_readme` needs quarto; this keeps README.md in step with index.ipynb without it."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    out = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': out.append(src)
        elif c['cell_type'] == 'code':
            lines = [l for l in src.splitlines() if not l.startswith('#|')]
            if any('#| hide' in l for l in src.splitlines()) or not lines: continue
            out.append('```python\n' + '\n'.join(lines) + '\n```')
    return '<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook -->\n\n' + '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        sys.exit(0 if (ROOT/'README.md').read_text(encoding='utf-8') == text else 'README.md is stale: run scripts/make_readme.py')
    (ROOT/'README.md').write_text(text, encoding='utf-8')
