#!/bin/bash
# The big exFAT case, too slow for the test suite (~5 minutes, 8 GiB sparse
# image in /tmp): a 10,000-file directory and a 5 GiB file written by
# exfat-fuse, read back through a real rump_exfat mount (the installed
# command: run scripts/setup first), judged by sha256 and fsck.exfat. As root.
set -e
d=$(mktemp -d /tmp/exfat-big.XXXXXX)
trap 'umount "$d/m" 2>/dev/null || true; fusermount3 -u "$d/f" 2>/dev/null || true; [ -n "$loop" ] && losetup -d "$loop"; rm -rf "$d"' EXIT
mkdir "$d/m" "$d/f"
truncate -s 8G "$d/x.img"
mkfs.exfat -c 128K "$d/x.img" >/dev/null
t0=$(date +%s)
loop=$(losetup -f --show "$d/x.img")
mount.exfat-fuse "$loop" "$d/f"
mkdir "$d/f/many"
for i in $(seq 1 10000); do echo "$i" > "$d/f/many/file-$i-abcdefghij.txt"; done
head -c $((5*1024*1024*1024)) /dev/urandom | tee "$d/f/five.bin" | sha256sum | cut -d' ' -f1 > "$d/src.sha"
fusermount3 -u "$d/f"; sleep 1; losetup -d "$loop"; loop=
t1=$(date +%s); echo "exfat-fuse wrote 10,000 files + 5 GiB in $((t1-t0)) s"
rump_exfat -o ro "$d/x.img" "$d/m"
n=$(ls "$d/m/many" | wc -l)
bad=0; for i in 1 2 77 5000 9999 10000; do [ "$(cat "$d/m/many/FILE-$i-ABCDEFGHIJ.TXT")" = "$i" ] || bad=$((bad+1)); done
s=$(sha256sum "$d/m/five.bin" | cut -d' ' -f1)
t2=$(date +%s)
echo "rump_exfat: $n files listed, $bad wrong contents (case-insensitive names), 5 GiB sha256 $( [ "$s" = "$(cat "$d/src.sha")" ] && echo matches || echo DIFFERS ) ($((t2-t1)) s)"
umount "$d/m"
fsck.exfat -n "$d/x.img" >/dev/null && echo "fsck.exfat -n: clean"
