#!/usr/bin/env python3
# Groups the samples of `perf record -g -p <server pid>` files by what the
# server was doing (MD5, HighwayHash, erasure coding, SigV4, JSON, malloc,
# copies, fsync and block I/O, scheduling, HTTP, ...): each symbol of
# `perf report --no-children --sort sym` is counted in the first group
# whose pattern it matches. Prints a markdown table, one column per file.
# Usage: scripts/bench-perf-groups.py A.data [B.data ...]
import sys, re, subprocess, collections
cats = [
 ("MD5", r"md5"),
 ("HighwayHash (bitrot)", r"highway|AvxHash"),
 ("erasure coding", r"reedsolomon|galois|gal_mul"),
 ("SigV4 (SHA-256, HMAC)", r"sha256|sha2::|hmac|ring::|aws_lc.*(sha|hmac)|signature"),
 ("JSON (serde_json)", r"serde_json|serde::|de::Deserialize|Serializer"),
 ("malloc/free", r"malloc|_int_free|cfree|free@|realloc|calloc|consolidate|tcache"),
 ("user memcpy/memset", r"memmove|memcpy|memset"),
 ("page cache writes (write syscalls)", r"copy_folio_from_iter|generic_perform_write|ext4_da_write|filemap_|folio|shmem_write"),
 ("socket copy/TCP", r"_copy_to_iter|_copy_from_iter|skb|tcp_|__sys_recv|sock_|ip_|dev_|net_|netif|loopback"),
 ("fsync / block I/O", r"fsync|sync_dirty|blk|bio|jbd2|iowrite|submit|ext4_sync|writepages|mpage|virtblk|discard|io_schedule"),
 ("scheduling, futex, wakeups", r"finish_task_switch|futex|try_to_wake|schedule|_raw_spin_unlock_irqrestore|sched_|wake_up|switch_|pick_next|enqueue|dequeue|yield|idle"),
 ("HTTP (hyper, s3s, httparse)", r"hyper|httparse|s3s|http::|h2::"),
 ("tokio runtime", r"tokio"),
 ("file open/stat/read (VFS)", r"path_|lookup|do_sys_open|openat|statx|dput|dentry|inode|filename|getname|link_path|do_filp|vfs_read|vfs_statx|ext4_file_open|fput|file_open"),
 ("syscall entry/exit, other kernel", r"entry_SYSCALL|syscall|irq|softirq|exc_page|page_fault|clear_page|\[k\]"),
]
def run(f):
    out = subprocess.run(["perf","report","-i",f,"--no-children","--sort","sym","--stdio","-g","none","--percent-limit","0"],capture_output=True,text=True).stdout
    tot = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\[.\])\s+(.*)", line)
        if not m: continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        s = kind + " " + sym
        for name, pat in cats:
            if re.search(pat, s, re.I):
                tot[name] += pct; break
        else:
            tot["other user code"] += pct
    return tot
files = sys.argv[1:]
res = {f: run(f) for f in files}
names = [c[0] for c in cats] + ["other user code"]
print("| share of server CPU samples | " + " | ".join(files) + " |")
print("|---|" + "---:|"*len(files))
for n in names:
    print(f"| {n} | " + " | ".join(f"{res[f][n]:.1f} %" for f in files) + " |")
