#!/usr/bin/env bash
# Build the Linux guest of the demo and the guest tests: Debian bookworm's
# kernel (package linux-image-amd64) and a busybox initramfs whose /init
# runs the workload named on the kernel command line (guest/init below).
#
# The .deb files are fetched with "apt-get download" (apt checks them
# against the signed archive) into $CACHE/guest and only unpacked with
# dpkg-deb -x: nothing is installed on the host.  The guest programs of
# bench/guest/ are compiled here, static.  Reruns reuse the cache and
# rebuild the initramfs only when this script or a guest program changed.
#
# Usage: build-guest.sh OUTDIR
# Results: OUTDIR/vmlinuz, OUTDIR/initramfs.cpio.gz, OUTDIR/kernel-version
#
# Guest command line (read by /init):
#   demo=nvme      write SIZE MiB of random data to /dev/nvme0n1 with
#                  O_DIRECT, read it back, compare checksums
#   demo=gpio      find the PCI-IDIO-16 gpio chip, toggle its outputs
#   demo=gpio-loop set the chip's 16 outputs to a new pattern, read them
#                  back HOLD s later, LOOPS times (for the migration test)
#   demo=nvme-loop write/read/compare in a loop until an I/O error
#                  (for the server-killed test), at most LOOPS rounds
#   demo=load      run bench/guest/vfio-user-load.c on /dev/nvme0n1: the
#                  jobs of load=RW:BS:IODEPTH[,...] one after the other
#                  (e.g. load=write:1M:1,randread:4K:32), each for
#                  runtime=TIME (fio's syntax: 5, 500ms) over the first
#                  SIZE MiB; one "vfio-user-load: name=..." line per job
#   demo=shell     just a shell
#   size=MiB (default 16)  loops=N (default 200)  shell=1 (shell after the
#   workload instead of powering off)  hold=SECONDS (default 0.5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

say() { echo "build-guest: $*"; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

[ $# = 1 ] || die "usage: build-guest.sh OUTDIR"
dl=$VFIO_USER_CACHE/guest
mkdir -p "$dl" "$1" || die "cannot create $dl or $1"
out=$(realpath -e "$1")
self=$(realpath -e "$0")
# The guest programs: bench/guest/NAME.c becomes /bin/NAME in the guest.
guestsrc=$(dirname "$self")/../bench/guest
guestprogs=("$guestsrc"/*.c)

for t in apt-get dpkg-deb cpio gzip xz gcc; do
    command -v "$t" >/dev/null ||
        die "$t not found: run scripts/install-deps.sh (cpio, xz-utils, build-essential)"
done

# Fetch PKG into the cache unless a .deb of it is already there.  For the
# kernel, linux-image-amd64 is a metapackage: take the image it depends on.
fetch() {
    local pkg=$1 f
    f=$(ls "$dl"/"${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$f" ]; then
        say "downloading $pkg (apt-get download, into $dl)" >&2
        # apt's "_apt cannot access" notice is harmless for root's cache.
        (cd "$dl" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' >&2) ||
            true
        f=$(ls "$dl"/"${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
        [ -n "$f" ] || die "apt-get download $pkg failed (apt-get update needed? run scripts/install-deps.sh)"
    fi
    echo "$f"
}

kdeb=$(ls "$dl"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$kdeb" ]; then
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update)"
    kdeb=$(fetch "$kpkg")
fi
bdeb=$(fetch busybox-static)

stamp=$out/.inputs
# What the result is made of: the .debs, this script and the guest
# programs' sources (a change to any rebuilds the initramfs).
want="$(basename "$kdeb") $(basename "$bdeb") $(cat "$self" "${guestprogs[@]}" | md5sum | cut -c1-32)"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ] &&
   [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi

say "building guest kernel and initramfs in $out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Unpacked once per .deb, in the cache (the kernel's modules take ~400 MB
# and a minute to unpack).
unpack() {   # DEB -> directory
    local d
    d=$dl/unpacked/$(basename "$1" .deb)
    if [ ! -f "$d/.done" ]; then
        rm -rf "$d"; mkdir -p "$d"
        dpkg-deb -x "$1" "$d" || die "cannot unpack $1"
        touch "$d/.done"
    fi
    echo "$d"
}
kdir=$(unpack "$kdeb")
bdir=$(unpack "$bdeb")
# Only the newest unpacked kernel is kept.
for d in "$dl"/unpacked/linux-image-*; do
    [ "$d" = "$kdir" ] || rm -rf "$d"
done
kver=$(ls "$kdir/lib/modules" | head -n 1)
[ -n "$kver" ] && [ -f "$kdir/boot/vmlinuz-$kver" ] || die "no kernel in $kdeb"
moddir=$kdir/lib/modules/$kver

# Module name -> path (file names may use - or _; the kernel treats both
# alike).  .ko, .ko.xz and .ko.zst are all accepted.
declare -A path
while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
    path[$n]=${f#"$moddir"/}
done < <(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')

modinfo_field() {   # FIELD FILE: values of a .modinfo field
    local f=$moddir/$2
    case "$f" in
        *.xz) xz -dc "$f";;
        *.zst) zstd -dc "$f";;
        *) cat "$f";;
    esac | tr '\0' '\n' | sed -n "s/^$1=//p"
}

# Depth-first: dependencies first, each once.  Soft "pre:" dependencies
# and the crypto algorithms that the CRC libraries ask the kernel for by
# name (request_module, needing a modprobe with aliases) are added too.
declare -A seen
order=()
add() {
    local n=${1//-/_} d
    [ -n "${seen[$n]:-}" ] && return 0
    seen[$n]=1
    # Not a module: built in, or an alias (softdep "crct10dif" is provided
    # by crct10dif_generic, loaded explicitly below).
    [ -n "${path[$n]:-}" ] || return 0
    for d in $(modinfo_field depends "${path[$n]}" | tr ',' ' ') \
             $(modinfo_field softdep "${path[$n]}" | sed -n 's/^pre: *//p'); do
        add "$d"
    done
    order+=("$n")
}
# The CRC users (t10-pi via nvme-core) look up these algorithms by name.
for m in crct10dif_generic crc64_rocksoft_generic nvme gpio_pci_idio_16; do
    add "$m"
done

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,"lib/modules/$kver"}
cp "$bdir/bin/busybox" "$root/bin/busybox"
# Static, so that the initramfs needs no C library.
for c in "${guestprogs[@]}"; do
    gcc -static -O2 -Wall -o "$root/bin/$(basename "$c" .c)" "$c" -lm ||
        die "cannot compile $c"
done
: > "$root/lib/modules/$kver/modules.dep"
for n in "${order[@]}"; do
    src=$moddir/${path[$n]}
    rel=${path[$n]%.xz}; rel=${rel%.zst}
    mkdir -p "$(dirname "$root/lib/modules/$kver/$rel")"
    case "$src" in
        *.xz) xz -dc "$src" > "$root/lib/modules/$kver/$rel";;
        *.zst) zstd -dc "$src" > "$root/lib/modules/$kver/$rel";;
        *) cp "$src" "$root/lib/modules/$kver/$rel";;
    esac
    echo "$rel" >> "$root/lib/modules/$kver/load-order"
    echo "$rel:" >> "$root/lib/modules/$kver/modules.dep"
done
say "modules: ${order[*]}"

cat > "$root/init" <<'EOF'
#!/bin/busybox sh
# Guest init of the vfio-user-pci demo (scripts/build-guest.sh).
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk_ratelimit 2>/dev/null

demo=shell size=16 loops=200 shell=0 load= runtime=5 hold=0.5
for a in $(cat /proc/cmdline); do
    case "$a" in
        demo=*|size=*|loops=*|shell=*|load=*|runtime=*|hold=*) eval "${a%%=*}='${a#*=}'";;
    esac
done

g() { echo "GUEST: $*"; }
result() { echo "GUEST-RESULT: $*"; }

# busybox dd prints no rate: time it with /proc/uptime (10 ms ticks).
now() { cut -d' ' -f1 /proc/uptime; }
rate() {   # T0 T1 -> "X.Y MB/s" for $size MiB
    awk -v a=$1 -v b=$2 -v m=$size 'BEGIN { t = b - a; if (t < 0.01) t = 0.01;
        printf "%.1fMB/s", m * 1.048576 / t }'
}

# gpio_find_chip: wait for the pci-idio-16 driver to bind, and set chip,
# base and ngpio to its gpio chip; on failure, say why as the result.
gpio_find_chip() {
    local c dev
    if ! wait_for /sys/bus/pci/drivers/pci-idio-16 10 ||
       ! wait_for "$(ls -d /sys/bus/pci/drivers/pci-idio-16/0000:* 2>/dev/null | head -n 1)" 20; then
        pci_devs | sed 's/^/GUEST pci: /'
        result "$demo FAIL (pci-idio-16 driver not bound)"
        return 1
    fi
    dev=$(ls -d /sys/bus/pci/drivers/pci-idio-16/0000:* | head -n 1)
    g "pci-idio-16 driver bound to ${dev##*/}"
    chip= base= ngpio=
    for c in /sys/class/gpio/gpiochip*; do
        case "$(readlink -f $c)" in
            *"${dev##*/}"*) chip=$c base=$(cat $c/base) ngpio=$(cat $c/ngpio);;
        esac
    done
    if [ -z "$chip" ]; then
        result "$demo FAIL (driver bound, no gpio chip)"
        return 1
    fi
    g "gpio chip ${chip##*/}: label $(cat $chip/label), base $base, $ngpio lines"
}

# gpio_export_line N: export line N; prints its name under /sys/class/gpio
# (the driver's line name, OUT0..., where it names them, else gpioN).
gpio_export_line() {
    ls /sys/class/gpio > /tmp/before
    echo $1 > /sys/class/gpio/export || return 1
    ls /sys/class/gpio | grep -vxF -f /tmp/before | head -n 1
}

kver=$(uname -r)
g "kernel $kver up in $(now) s; loading drivers (insmod waits for the device probe)"
# insmod, unlike kmod's modprobe, does not read MODULE.PARAM=VALUE from
# the kernel command line: pass those on.
for m in $(cat /lib/modules/$kver/load-order); do
    n=$(basename $m .ko | tr - _) args=
    for a in $(cat /proc/cmdline); do
        case "$(echo "${a%%.*}" | tr - _)" in "$n") args="$args ${a#*.}";; esac
    done
    insmod /lib/modules/$kver/$m $args 2>/tmp/insmod.err ||
        g "insmod $(basename $m) failed: $(cat /tmp/insmod.err)"
done

pci_devs() {
    for d in /sys/bus/pci/devices/*; do
        echo "$(basename $d) $(cat $d/vendor):$(cat $d/device) class $(cat $d/class) driver $(basename "$(readlink $d/driver)" 2>/dev/null)"
    done
}

wait_for() {   # PATH SECONDS
    i=0
    while [ ! -e "$1" ] && [ $i -lt $(( $2 * 10 )) ]; do
        sleep 0.1; i=$((i + 1))
    done
    [ -e "$1" ]
}

nvme_round() {   # N: one write/read/compare round of $size MiB; 0 if equal
    t0=$(now)
    dd if=/tmp/pattern of=/dev/nvme0n1 bs=1M count=$size oflag=direct \
        2>/tmp/w.log || { g "write failed: $(tail -n 1 /tmp/w.log)"; return 2; }
    t1=$(now)
    echo 3 > /proc/sys/vm/drop_caches
    t2=$(now)
    dd if=/dev/nvme0n1 of=/tmp/readback bs=1M count=$size iflag=direct \
        2>/tmp/r.log || { g "read failed: $(tail -n 1 /tmp/r.log)"; return 2; }
    t3=$(now)
    wrate=$(rate $t0 $t1) rrate=$(rate $t2 $t3)
    [ "$(md5sum </tmp/readback)" = "$(md5sum </tmp/pattern)" ]
}

# The interrupt chips of the nvme lines of /proc/interrupts (PCI-MSI,
# IO-APIC, IR-PCI-MSI...), comma-separated, and their interrupt count.
nvme_irq_chips() {
    grep -E 'nvme' /proc/interrupts |
        awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++); print $i }' |
        sort -u | tr '\n' ',' | sed 's/,$//'
}
# Kernel messages about a timeout (the command line, which may set
# nvme_core.io_timeout, excepted).
dmesg_timeouts() { dmesg | grep -i timeout | grep -v 'ommand line:'; }
nvme_irq_count() {
    grep -E 'nvme' /proc/interrupts |
        awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }'
}

nvme_wait() {
    if ! wait_for /dev/nvme0n1 60; then
        g "no /dev/nvme0n1 after 60 s"; pci_devs; dmesg | grep -i nvme | tail
        return 1
    fi
    g "driver loaded at $(now) s"
    drv=$(ls -d /sys/bus/pci/drivers/nvme/0000:* 2>/dev/null | head -n 1)
    g "nvme driver bound to ${drv##*/}; $(cat /sys/block/nvme0n1/device/model 2>/dev/null | sed 's/ *$//'), $(( $(cat /sys/block/nvme0n1/size) / 2048 )) MiB"
}

nvme_setup() {
    nvme_wait || return 1
    dd if=/dev/urandom of=/tmp/pattern bs=1M count=$size 2>/dev/null
    g "pattern: $size MiB, md5 $(md5sum </tmp/pattern | cut -c1-32)"
}

case "$demo" in
nvme)
    if nvme_setup; then
        nvme_round; rc=$?
        g "write: $(tail -n 1 /tmp/w.log), $size MiB in $(awk -v a=$t0 -v b=$t1 'BEGIN{print b-a}') s, O_DIRECT: $wrate"
        g "read:  $(tail -n 1 /tmp/r.log), $size MiB in $(awk -v a=$t2 -v b=$t3 'BEGIN{print b-a}') s, O_DIRECT: $rrate"
        g "read back md5 $(md5sum </tmp/readback | cut -c1-32)"
        # How the nvme interrupts arrive (PCI-MSI, IO-APIC...; IR- with
        # interrupt remapping) and whether the driver ever timed out (nvme
        # logs "I/O ... timeout" when it polls a command whose interrupt
        # never came): both go on the result line.
        # An interrupt storm (a line left asserted that no handler claims)
        # makes the kernel disable the line: "irq N: nobody cared".
        irqinfo="irq=$(nvme_irq_chips) irqs=$(nvme_irq_count) dmesg-timeout=$(dmesg_timeouts | wc -l) nobody-cared=$(dmesg | grep -c 'nobody cared')"
        if [ $rc = 0 ]; then
            result "nvme PASS size=${size}MiB write=$wrate read=$rrate $irqinfo"
        else
            result "nvme FAIL (rc $rc: data differ or I/O error) $irqinfo"
        fi
    else
        result "nvme FAIL (no device) irq=$(nvme_irq_chips) dmesg-timeout=$(dmesg_timeouts | wc -l)"
    fi
    # "N: COUNTS... CHIP HWIRQ-TYPE NAME[, NAME...]": with INTx the queues
    # share one line.
    grep -E 'nvme' /proc/interrupts | awk '{ s = 0;
        for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i;
        r = ""; for (; i <= NF; i++) r = r " " $i
        print "GUEST irq " $1 r ": " s " interrupts" }'
    dmesg | grep -E '\] (nvme|I/O error)' | tail -n 4 | sed 's/^/GUEST dmesg: /'
    dmesg_timeouts | tail -n 6 | sed 's/^/GUEST dmesg timeout: /'
    dmesg | grep -E 'nobody cared|Disabling IRQ|handlers:' -A1 | grep -v '^--' | head -n 6 |
        sed 's/^/GUEST dmesg irq: /'
    ;;
nvme-loop)
    if nvme_setup; then
        i=1 rc=0
        while [ $i -le $loops ]; do
            nvme_round; rc=$?
            [ $rc = 0 ] || break
            g "IO-LOOP $i ok at $(now) s"
            i=$((i + 1))
        done
        g "loop ended at $(now) s"
        dmesg | grep -E '\] (nvme|I/O error|pcieport.*AER)' | tail -n 6 | sed 's/^/GUEST dmesg: /'
        case $rc in
            0) result "nvme-loop NOERROR after $loops rounds";;
            1) result "nvme-loop MISMATCH in round $i";;
            *) result "nvme-loop IOERROR in round $i";;
        esac
    else
        result "nvme-loop FAIL (no device)"
    fi
    ;;
gpio)
    if gpio_find_chip; then
        n=0 names=
        for l in 0 1 2 3 8 9; do
            e=$(gpio_export_line $((base + l))) || { g "export of line $l failed"; continue; }
            names="$names $e"
            echo out > /sys/class/gpio/$e/direction 2>/dev/null || true
            for v in 1 0 1; do
                echo $v > /sys/class/gpio/$e/value && n=$((n + 1))
            done
        done
        e=$(gpio_export_line $((base + 16)))
        g "set output lines$names: $n writes; input $e reads $(cat /sys/class/gpio/$e/value 2>/dev/null)"
        if [ $n -gt 0 ]; then
            result "gpio PASS chip=${chip##*/} lines=$ngpio output-writes=$n"
        else
            result "gpio FAIL (chip ${chip##*/} found, outputs not writable)"
        fi
    fi
    ;;
gpio-loop)
    # Round i sets the 16 output lines to a pattern, waits $hold s, and
    # reads them back from the device (the driver reads the output
    # registers): a VM migrated in between must find the pins it set.
    if gpio_find_chip; then
        lines=
        for l in $(seq 0 15); do
            e=$(gpio_export_line $((base + l))) || { g "export of line $l failed"; break; }
            echo out > /sys/class/gpio/$e/direction || break
            lines="$lines $e"
        done
        set -- $lines
        if [ $# = 16 ]; then
            i=1 rc=0
            while [ $i -le $loops ]; do
                pat=$(( (i * 40503) & 65535 )) b=0
                for e in $lines; do
                    echo $(( (pat >> b) & 1 )) > /sys/class/gpio/$e/value; b=$((b + 1))
                done
                g "GPIO-LOOP $i set at $(now) s"
                sleep $hold
                got=0 b=0
                for e in $lines; do
                    got=$(( got | ($(cat /sys/class/gpio/$e/value) << b) )); b=$((b + 1))
                done
                if [ $got != $pat ]; then
                    g "GPIO-LOOP $i MISMATCH: set $pat, read $got at $(now) s"
                    rc=1; break
                fi
                g "GPIO-LOOP $i ok at $(now) s"
                i=$((i + 1))
            done
            [ $rc = 0 ] && result "gpio-loop PASS $loops rounds" ||
                result "gpio-loop MISMATCH in round $i"
        else
            result "gpio-loop FAIL (exported $# of 16 output lines)"
        fi
    fi
    ;;
load)
    # One vfio-user-load job per RW:BS:IODEPTH of load=, named after it.
    set -- --filename=/dev/nvme0n1 --size=${size}M --runtime=$runtime \
        --time_based --output-format=normal,kv
    for w in $(echo "$load" | tr , ' '); do
        rw=${w%%:*}
        qd=${w##*:}
        bs=${w#*:}; bs=${bs%%:*}
        set -- "$@" --name=$rw-$bs-qd$qd --rw=$rw --bs=$bs --iodepth=$qd
    done
    if [ -z "$load" ]; then
        result "load FAIL (no load= on the command line)"
    elif nvme_wait; then
        g "vfio-user-load $*"
        if vfio-user-load "$@"; then
            result "load PASS jobs=$(echo "$load" | tr , ' ' | wc -w) runtime=$runtime size=${size}MiB"
        else
            result "load FAIL (vfio-user-load exited with $?)"
        fi
        dmesg | grep -E '\] (nvme|I/O error)' | tail -n 4 | sed 's/^/GUEST dmesg: /'
    else
        result "load FAIL (no device)"
    fi
    ;;
shell) ;;
*) result "unknown demo=$demo";;
esac

if [ "$demo" = shell ] || [ "$shell" = 1 ]; then
    g "shell on the console; 'poweroff -f' (or Ctrl-A x) ends the guest"
    setsid cttyhack sh
fi
sync
poweroff -f
EOF
chmod +x "$root/init"

(cd "$root" && find . | sort | cpio -o -H newc --quiet | gzip -6) \
    > "$work/initramfs.cpio.gz" || die "cpio failed"
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"
mv "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$kver" > "$out/kernel-version"
echo "$want" > "$stamp"
say "kernel $kver, initramfs $(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB"
