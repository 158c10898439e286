#!/usr/bin/env bash
# Stream a path of a job's folder as a tar on stdout, followed by .labstack-sha256sums (sha256 of every file), so
# the operator side verifies what it received. Paths outside the job folder are refused.
# Usage: sudo job-fetch.sh ID PATH >out.tar
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -eq 2 ] || die "usage: $0 ID PATH"
id=$1
need_job "$id"
dir=$(job_dir "$id")
relative=${2%/}
case "/$relative/" in
  //|*/../*|*/./*) die "fetch path '$2' must name a file or folder inside the job folder, e.g. out/" ;;
esac
[[ $relative != /* ]] || die "fetch path '$2' must be relative to the job folder, e.g. out/"
real=$(realpath -m "$dir/$relative")
case "$real" in
  "$dir"/*) ;;
  *) die "fetch path '$2' leads outside the job folder" ;;
esac
[ -e "$real" ] || die "job $id has no $relative (yet)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Hash on the other core while the files stream (the page cache serves the second read), then send the list as a
# second tar archive: the reader skips the first one's end blocks (ignore_zeros) and finds it last.
# openssl uses the CPU's SHA instructions (about 3x sha256sum where they exist); same digests, "<hex> *<name>".
digester=(sha256sum)
if command -v openssl >/dev/null 2>&1; then digester=(openssl dgst -sha256 -r); fi
(cd "$dir" && find "$relative" -type f -print0 | sort -z | xargs -0 -r "${digester[@]}") >"$scratch/.labstack-sha256sums" &
hasher=$!
# 128 KiB records (the reader's size): a twelfth of the writes into ssh's pipe of tar's 10 KiB default.
tar -c --blocking-factor=256 -f - -C "$dir" "$relative"
wait "$hasher"
tar -c -f - -C "$scratch" .labstack-sha256sums
