"The library must be exactly what `nbdev_export` makes of the notebooks, and the notebooks must be clean."
import filecmp, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def _copy_project(dest):
    for name in ('settings.ini', 'nbs', 'wsol_nb'):
        src = ROOT/name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest/name)

def _py_files(d): return sorted(p.relative_to(d) for p in d.rglob('*.py') if '__pycache__' not in p.parts)

def test_library_matches_notebooks(tmp_path):
    _copy_project(tmp_path)
    shutil.rmtree(tmp_path/'wsol_nb')
    subprocess.run([str(BIN/'nbdev_export')], cwd=tmp_path, check=True, capture_output=True)
    fresh, lib = tmp_path/'wsol_nb', ROOT/'wsol_nb'
    assert _py_files(fresh) == _py_files(lib), 'modules differ between notebooks and wsol_nb/'
    differ = [str(p) for p in _py_files(lib) if not filecmp.cmp(fresh/p, lib/p, shallow=False)]
    assert not differ, f'wsol_nb/ was not exported from the notebooks: {differ}; run nbdev_export'

def test_notebooks_are_clean(tmp_path):
    _copy_project(tmp_path)
    subprocess.run([str(BIN/'nbdev_clean')], cwd=tmp_path, check=True, capture_output=True)
    nbs = sorted(p.relative_to(tmp_path) for p in (tmp_path/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    dirty = [str(p) for p in nbs if not filecmp.cmp(tmp_path/p, ROOT/p, shallow=False)]
    assert not dirty, f'notebooks not cleaned: {dirty}; run nbdev_clean'

def test_readme_matches_index():
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
