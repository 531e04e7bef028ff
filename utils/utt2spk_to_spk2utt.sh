#!/usr/bin/env bash
# Convert utt2spk ("<utt> <spk>" lines) to spk2utt ("<spk> <utt1> <utt2> ..."), speakers in C order.
# Usage: utils/utt2spk_to_spk2utt.sh < utt2spk > spk2utt   (or give utt2spk files as arguments)
set -euo pipefail
awk '
  NF == 0 { next }
  NF != 2 { printf("utt2spk_to_spk2utt.sh: line %d: expected \"<utt> <spk>\", got %d fields\n", NR, NF) > "/dev/stderr"; bad = 1; exit 1 }
  !($2 in utts) { order[n++] = $2 }
  { utts[$2] = utts[$2] " " $1 }
  END { if (bad) exit 1; for (i = 0; i < n; i++) print order[i] utts[order[i]] }
' "$@" | LC_ALL=C sort -k1,1
