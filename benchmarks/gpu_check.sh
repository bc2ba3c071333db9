#!/usr/bin/env bash
# One GPU check: the kit's GPU figures in one run (about 8 minutes on an NVIDIA H100/H200), written with the GPU's name
# to benchmarks/gpu_results/<gpu>-<date>.md. Random weights only (no download); the embedded synthetic dataset is
# generated locally. Steps (each prints its figure; a failed step does not stop the others):
#   ddt    DDT on VGG16 pool5 at 448 px, bf16, channels-last, JPEG decoded on the GPU  (target >= 2,000 images/s)
#   train  the PSOL ResNet50 training loop / bare forward+backward, same model and batch (target >= 0.85)
#   demo   wall time of wsol-demo on the embedded dataset                             (target < 60 s)
#   ddp    wsol-train psol under torchrun with one process                            (runs to its end)
#   eval   wsol-eval on 50,000 maps: time and peak RSS                                (benchmarks/bench_eval.py)
#
#   bash benchmarks/gpu_check.sh               # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry-run     # every step on the CPU, CI-sized (1-3 minutes on 2 cores)
#   options: --out FILE (results file), --steps ddt,train,demo,ddp,eval (a subset)
#
# Python: $WSOL_PYTHON if set, else .venv/bin/python if present, else a new .venv with `pip install -e '.[dev]'` (as
# the Makefile does; needs the package index). Without network the new .venv sees the system's site-packages
# (torch, torchvision, ...) and gets the kit itself with --no-deps (no venv at all: python3 with this checkout on
# PYTHONPATH); a missing module is named before any step runs.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=0; OUT=""; STEPS="ddt,train,demo,ddp,eval"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --steps) STEPS="$2"; shift ;;
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# --- Python -----------------------------------------------------------------------------------------------------------
if [ -n "${WSOL_PYTHON:-}" ]; then PY=$WSOL_PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else
  echo "# no .venv: making one as the Makefile does (pip install -e '.[dev]')"
  export PIP_DEFAULT_TIMEOUT=10
  if ! { python3 -m venv .venv && .venv/bin/pip install -q --retries 1 -e '.[dev]'; }; then
    echo "# pip install failed (no network?): a .venv over the system's site-packages, the kit installed with --no-deps"
    rm -rf .venv
    if ! { python3 -m venv --system-site-packages .venv && .venv/bin/pip install -q --no-deps --no-build-isolation -e .; }; then
      echo "# no venv possible: the system's python3, with this checkout on PYTHONPATH"; rm -rf .venv
    fi
  fi
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python
  else PY=$(command -v python3); export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}; fi
fi
BIN=$(dirname "$PY")
MODS="torch torchvision numpy cv2 numba skimage PIL fastcore tqdm wsol_nb.demo"
missing=$("$PY" -c "import importlib, sys
bad = []
for m in sys.argv[1:]:
    try: importlib.import_module(m)
    except Exception as e: bad.append(m + ' (' + type(e).__name__ + ': ' + str(e)[:150] + ')')
print('; '.join(bad))" $MODS 2>&1)
[ -n "$missing" ] && echo "# WARNING: $PY cannot import: $missing"

# --- machine and output -----------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# tool NAME: the console script next to $PY, else a wrapper that runs the same entry point with $PY
tool() {
  if [ -x "$BIN/$1" ]; then echo "$BIN/$1"; return; fi
  mkdir -p "$WORK/bin"; local w=$WORK/bin/$1
  if [ "$1" = torchrun ]; then printf '#!/bin/sh\nexec "%s" -m torch.distributed.run "$@"\n' "$PY" > "$w"
  else printf '#!/bin/sh\nexec "%s" -c "from wsol_nb.cli import %s_cli as f; f()" "$@"\n' "$PY" "${1#wsol-}" > "$w"; fi
  chmod +x "$w"; echo "$w"
}
if [ $DRY = 1 ]; then GPU="CPU (dry run)"; DEV=cpu
elif command -v nvidia-smi >/dev/null 2>&1; then
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); DEV=cuda
  GPUINFO=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
else GPU="no GPU found"; DEV=cuda; fi
DATE=$(date -u +%Y-%m-%d)
slug=$(echo "$GPU" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')
if [ -z "$OUT" ]; then
  if [ $DRY = 1 ]; then OUT=${TMPDIR:-/tmp}/gpu_check-dry-run-$DATE.md; else OUT=benchmarks/gpu_results/$slug-$DATE.md; fi
fi
mkdir -p "$(dirname "$OUT")"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
echo "# gpu_check: $GPU; python $PY; results -> $OUT"

# --- steps ------------------------------------------------------------------------------------------------------------
# step NAME TIMEOUT_S CMD...: run with a time limit, log to $WORK/NAME.log (and the screen); records status and seconds
declare -A RC SECS
step() {
  local name=$1 lim=$2; shift 2
  echo; echo "## $name: $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$lim" "$@" 2>&1 | tee "$WORK/$name.log"
  RC[$name]=${PIPESTATUS[0]}; SECS[$name]=$((SECONDS - t0))
  echo "## $name: exit ${RC[$name]} after ${SECS[$name]} s"
}
want() { [[ ",$STEPS," == *",$1,"* ]]; }

if [ $DRY = 1 ]; then  # tiny data, tiny sizes, a step or two
  DATA=$WORK/data
  "$PY" -c "from wsol_nb.synthetic import make_synthetic; make_synthetic('$DATA', n_classes=2, n_train=4, n_test=2, size=64)"
  DDT=(--device cpu --backbone vgg16 --weights none --size 64 --n 8 --batch-size 4 --decode cpu --repeats 1 --threads 1)
  TRAIN=(--device cpu --backbone resnet50 --weights none --size 64 --batch-size 4 --steps 2 --warmup 1 --repeats 1
         --preload 2 --pairs 0 --no-breakdown --no-progress --threads 1 --data "$DATA")
  DEMO=(--quick --steps baselines,cam --no-progress)
  DDP=(--data "$DATA" --backbone efficientnet_lite0 --batch-size 4 --max-steps 2 --device cpu)
  EVAL=(--counts 100 --startup 0 --pool 50 --compress stored)
  T_DDT=120; T_TRAIN=120; T_DEMO=240; T_DDP=120; T_EVAL=120
else  # the GPU figures; about 8 minutes in all on an H100/H200 (the step limits add up to 460 s)
  DATA=$("$PY" -c "from wsol_nb.synthetic import default_dataset; print(default_dataset())")
  DDT=(--device cuda --amp --channels-last --backbone vgg16 --weights none --size 448 --n 2048 --batch-size 128
       --decode cuda --repeats 3)
  TRAIN=(--device cuda --backbone resnet50 --weights none --batch-size 64 --size 224 --steps 60 --warmup 5 --repeats 3
         --no-progress)
  DEMO=(--no-progress)
  DDP=(--data "$DATA" --backbone resnet50 --batch-size 64 --max-steps 60 --device cuda)
  EVAL=(--counts 50000 --pool 1000 --compress stored)
  T_DDT=75; T_TRAIN=100; T_DEMO=90; T_DDP=45; T_EVAL=150
fi
echo "# data: $DATA"

want ddt && step ddt $T_DDT "$PY" benchmarks/bench_ddt.py "${DDT[@]}"
want train && step train $T_TRAIN "$PY" benchmarks/bench_train.py "${TRAIN[@]}"
want demo && step demo $T_DEMO "$(tool wsol-demo)" --out "$WORK/demo" "${DEMO[@]}"
want ddp && step ddp $T_DDP "$(tool torchrun)" --standalone --nproc_per_node 1 --no-python "$(tool wsol-train)" psol \
  --weights none --boxes gt --out "$WORK/ddp" --no-progress --overwrite "${DDP[@]}"
want eval && step eval $T_EVAL "$PY" benchmarks/bench_eval.py --tmp "$WORK" "${EVAL[@]}"

# --- figures and summary ----------------------------------------------------------------------------------------------
grab() { grep -m1 -oE "$2" "$WORK/$1.log" 2>/dev/null | head -1; }
num() { grep -oE '[0-9]+(\.[0-9]+)?' | head -1; }
declare -A FIG TARGET MET
if want ddt; then
  d=$(grab ddt 'DDT pseudo boxes: +[0-9.]+' | num); b=$(grab ddt 'bare feature extraction: +[0-9.]+' | num)
  FIG[ddt]="DDT ${d:-?} img/s (bare extraction ${b:-?} img/s)"; TARGET[ddt]=">= 2000 img/s"
  [ -n "$d" ] && MET[ddt]=$(awk -v x="$d" 'BEGIN{print (x >= 2000) ? "yes" : "no"}')
fi
if want train; then
  r=$(grab train 'ratio loop / bare +: best-of [0-9.]+; paired median [0-9.]+')
  best=$(echo "$r" | grep -oE 'best-of [0-9.]+' | num); pm=$(echo "$r" | grep -oE 'paired median [0-9.]+' | num)
  bl=$(grep -E '^(bare|loop) ' "$WORK/train.log" 2>/dev/null | awk '{printf "%s %s img/s, ", $1, $2}')
  FIG[train]="loop / bare ${pm:-?} (paired median), best-of ${best:-?}; ${bl%, }"; TARGET[train]=">= 0.85"
  [ -n "$pm" ] && MET[train]=$(awk -v x="$pm" 'BEGIN{print (x >= 0.85) ? "yes" : "no"}')
fi
if want demo; then
  FIG[demo]="wall ${SECS[demo]} s"; TARGET[demo]="< 60 s"
  [ "${RC[demo]}" = 0 ] && MET[demo]=$( [ "${SECS[demo]}" -lt 60 ] && echo yes || echo no)
fi
if want ddp; then
  l=$(grab ddp 'wsol-train psol: [a-z]+ at step [0-9]+')
  FIG[ddp]="${l:-no final line}, wall ${SECS[ddp]} s"; TARGET[ddp]="completes"
  [ "${RC[ddp]}" = 0 ] && [[ "$l" == *": done at"* ]] && MET[ddp]=yes || MET[ddp]=no
fi
if want eval; then
  row=$(grep -E '^\| [0-9,]+ \| float' "$WORK/eval.log" 2>/dev/null | tail -1)
  IFS='|' read -r _ n dt mb wall rep rss above per acc _ <<< "$row"
  FIG[eval]="$(echo $n) maps: wall $(echo $wall) s, reported $(echo $rep) s, peak RSS $(echo $rss) MB ($(echo $above) MB above start-up)"
  TARGET[eval]="flat peak RSS"; MET[eval]="-"
fi

[ $DRY = 1 ] && for s in ddt train demo ddp eval; do MET[$s]="- (dry run)"; done
sum="| step | figure | target | met | status | seconds |
|---|---|---|---|---|---|"
failed=0
for s in ddt train demo ddp eval; do
  want $s || continue
  rc=${RC[$s]:-?}; st=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then st="TIMED OUT"; failed=1
  elif [ "$rc" != 0 ]; then st="FAILED (exit $rc)"; failed=1; fi
  sum+="
| $s | ${FIG[$s]:-} | ${TARGET[$s]:-} | ${MET[$s]:--} | $st | ${SECS[$s]:-} |"
done

{
  echo "# GPU check: $GPU, $DATE"
  echo
  echo "- GPU: ${GPUINFO:-$GPU}"
  echo "- $("$PY" -c 'import torch, platform, os; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), Python {platform.python_version()}, {os.cpu_count()} CPUs")' 2>&1 | tail -1)"
  echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (with local changes)'), dry run: $([ $DRY = 1 ] && echo yes || echo no)"
  echo "- command: bash benchmarks/gpu_check.sh$([ $DRY = 1 ] && echo ' --dry-run')"
  echo
  echo "$sum"
  for s in ddt train demo ddp eval; do
    want $s || continue
    echo; echo "## $s (last 40 lines of its output)"; echo; echo '```'
    tail -n 40 "$WORK/$s.log" 2>/dev/null | cut -c1-300
    echo '```'
  done
} > "$OUT"
echo; echo "## summary ($GPU)"; echo "$sum"; echo; echo "written to $OUT"
exit $failed
