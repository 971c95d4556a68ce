#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/ from messages composed with the gateway's own
# library (see make_corpus/src/main.rs). Run it after a change to the message builders, the
# signer or the test PKI, then review and commit the new files. Encrypted seeds carry a fresh
# random key and IVs on every run, so those files always change.
#
# The generator links the daemon crate; by default it builds into the main workspace's target
# directory so that the dependencies the workspace has already built are reused.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
manifest="$fuzz/make_corpus/Cargo.toml"

# Resolve the generator's dependencies to the versions the main workspace uses (the copy is
# not committed: it would only drift from the workspace's).
cp "$repo/Cargo.lock" "$fuzz/make_corpus/Cargo.lock"

for target in mime_splitter envelope_parser signature_verifier; do
    rm -rf "${fuzz:?}/corpus/$target"
    mkdir -p "$fuzz/corpus/$target"
done
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" \
    cargo run --quiet --manifest-path "$manifest" -- "$fuzz/corpus"
du -sh "$fuzz/corpus"
