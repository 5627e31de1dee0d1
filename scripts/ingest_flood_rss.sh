#!/bin/sh
# Peak RSS of `gpu-nids ingest` on a generated SYN flood of N one-packet
# flows (default 5,000,000), for images and flows. Usage:
#   scripts/ingest_flood_rss.sh [N] [WORKDIR]
set -eu
N=${1:-5000000}
W=${2:-/tmp/gpu-nids-flood}
B=${GPU_NIDS_BIN:-target/release/gpu-nids}
mkdir -p "$W"
[ -f "$W/flood-$N.pcap" ] || "$B" bench ingest --gen-flood "$N" -o "$W/flood-$N.pcap"
for kind in images flows; do
    /usr/bin/time -v "$B" ingest -q --kind "$kind" "$W/flood-$N.pcap" -o "$W/ds-$kind" 2> "$W/time-$kind.txt"
    printf '%s: peak RSS %s KiB, wall %s\n' "$kind" \
        "$(grep 'Maximum resident' "$W/time-$kind.txt" | awk '{print $NF}')" \
        "$(grep 'Elapsed (wall' "$W/time-$kind.txt" | awk '{print $NF}')"
done
du -sh "$W"/ds-* 
