# Where a process's time goes, by system call: reads the output of
# "perf script -F tid,ip,sym" of a perf record -g (scripts/bench-guest.sh
# --profile).  A sample in the kernel is charged to the system call it
# is in, named by its first user-space frame (the libc wrapper: the
# kernel side of sendmsg, recvmsg, epoll_wait ... including the context
# switches and wake-ups they cause); a sample in user space to its own
# symbol.  Prints the share of each thread and of each entry >= 0.5 %.
function flush() {
    if (!nf) return
    tot++; th[tid]++
    if (kern) {
        ktot++
        k = usr != "" ? "kernel, in " usr : "kernel, no syscall (interrupt, page fault)"
    } else {
        k = "user: " top
    }
    c[k]++; nf = 0
}
/^ *[0-9]+ *$/ { flush(); tid = $1; top = ""; usr = ""; kern = 0; next }
NF >= 2 {
    if (!nf) { top = $2; kern = $1 ~ /^ffffffff/ }
    else if (usr == "" && kern && $1 !~ /^ffffffff/) usr = $2
    nf++
}
END {
    flush()
    printf "%d samples, %.1f%% in the kernel\n", tot, 100 * ktot / tot
    for (t in th) printf "  thread %s: %.1f%%\n", t, 100 * th[t] / tot
    for (k in c) if (100 * c[k] / tot >= 0.5) printf "%6.2f%%  %s\n", 100 * c[k] / tot, k | "sort -rn"
}
