#!/usr/bin/env bash
# Smoke run of every fuzz target (or of the targets named as arguments): builds them with
# cargo-fuzz (AddressSanitizer, debug assertions), then fuzzes each for FUZZ_SECONDS
# (default 20) starting from the committed seeds in fuzz/corpus/<target>/. New inputs go to a
# scratch directory, so the committed corpus is never modified. Fails if any target crashes,
# leaks, times out on an input or cannot be built; a crashing input is kept under
# fuzz/artifacts/<target>/ (see fuzz/README.md for minimising it). The inputs kept under
# fuzz/regressions/<target>/ are replayed after each run.
#
# Works on a stable toolchain: cargo-fuzz passes -Z flags (-Zsanitizer=address, ...), which
# stable rustc accepts with RUSTC_BOOTSTRAP=1.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz"

# Versions used when cargo-fuzz has to be installed.
readonly CARGO_FUZZ_VERSION=0.13.2
# Longest time one input may take before libFuzzer reports it as a hang, seconds.
readonly INPUT_TIMEOUT_SECONDS=10

seconds="${FUZZ_SECONDS:-20}"
if (($# > 0)); then
    targets=("$@")
else
    targets=(mime_splitter envelope_parser signature_verifier)
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

build_start=$SECONDS
if (($# > 0)); then
    for t in "${targets[@]}"; do cargo fuzz build "$t"; done
else
    cargo fuzz build
fi
echo "smoke: build took $((SECONDS - build_start)) s" >&2

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    seeds="corpus/$t"
    [[ -d "$seeds" ]] || { echo "smoke: no seed corpus $seeds" >&2; exit 1; }
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    status=0
    cargo fuzz run "$t" "$scratch/$t" "$seeds" -- \
        -max_total_time="$seconds" \
        -timeout="$INPUT_TIMEOUT_SECONDS" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    corp="$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    nseeds="$(find "$seeds" -type f | wc -l)"
    # Replay the kept reproducers of earlier findings (each file runs once).
    shopt -s nullglob
    kept=("regressions/$t"/*)
    shopt -u nullglob
    if ((status == 0 && ${#kept[@]})); then
        cargo fuzz run "$t" "${kept[@]}" -- -timeout="$INPUT_TIMEOUT_SECONDS" >>"$log" 2>&1 || status=$?
    fi
    if ((status == 0)); then
        summary+=("$t: ok, ${runs:-?} runs in ${seconds} s, cov ${cov:-?}, corpus ${corp:-?} (from $nseeds seeds), ${#kept[@]} regression input(s) replayed")
    else
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
        summary+=("$t: FAILED (exit $status) after ${runs:-?} runs, input: ${artifact:-none}")
        failed+=("$t")
        echo "----- $t: last lines of the libFuzzer log -----" >&2
        tail -40 "$log" >&2
    fi
done

printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "smoke: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
