/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A libvfio-user PCI device that does DMA when told to, so that the
 * interop qtests can make a server none of us wrote read and write guest
 * memory (libvfio-user's own "server" sample only DMAs from a timer that
 * no guest or qtest can arm).
 *
 * The DMA runs synchronously inside the REGION_WRITE of DMA_CMD, before
 * that write is replied to: the client services our DMA_READ/WRITE while
 * it waits for its reply.  A DMA region that came with an fd (the library
 * mapped it) is accessed through vfu_sgl_get(); one without (secure-dma,
 * or guest RAM without an fd) through vfu_sgl_read()/vfu_sgl_write(),
 * i.e. with DMA_READ/DMA_WRITE messages.  Counters tell the test which
 * path each byte took.
 *
 * The libvfio-user of QEMU 10.0's tarball (0b28d205) has a bug there:
 * vfu_sgl_read()/vfu_sgl_write() ask for the start of the DMA region, not
 * for the address given to vfu_addr_to_sgl() (vfu_dma_transfer() sends
 * sg->dma_addr + count, and sg->dma_addr is the region's start; the
 * offset is ignored).  Rather than move the wrong bytes, a DMA by message
 * that does not start at the start of a DMA region fails with ENOTSUP;
 * the QUERY registers tell where regions start.  Built against a library
 * with the fix (QEMU's copy as our series patches it, or newer libvfio-user),
 * with -DDMA_DEV_SGL_OFFSET=1, it DMAs by message at any address, and
 * says so in bit 0 of the FEATURES register; scripts/build-libvfio-user.sh
 * looks at the library's source to decide.
 *
 *   PCI id  1234:11e9, class 0xff0000 (unassigned), INTx pin A
 *   BAR0    4 KiB MMIO, the registers below (little endian, any width)
 *   BAR1    64 KiB MMIO, the device buffer
 *
 * Usage: dma-device [-v] SOCKET_PATH
 * Serves one client and exits with status 0 when it disconnects.
 */

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libvfio-user.h"

#define DMA_DEV_VENDOR_ID       0x1234
#define DMA_DEV_DEVICE_ID       0x11e9

/* BAR0 registers */
#define DMA_DEV_REG_ID          0x00    /* RO: DMA_DEV_ID_MAGIC */
#define DMA_DEV_REG_ADDR        0x08    /* RW, 64-bit: guest (IOVA) address */
#define DMA_DEV_REG_LEN         0x10    /* RW: bytes to move */
#define DMA_DEV_REG_BUF_OFFSET  0x14    /* RW: offset in the device buffer */
#define DMA_DEV_REG_CMD         0x18    /* RW: writing starts the DMA */
#define DMA_DEV_REG_STATUS      0x1c    /* RO: 0, or errno of the last DMA */
#define DMA_DEV_REG_DONE        0x20    /* RO: DMA commands that succeeded */
#define DMA_DEV_REG_MSG_BYTES   0x24    /* RO: bytes moved by DMA_READ/WRITE */
#define DMA_DEV_REG_MAP_BYTES   0x28    /* RO: bytes moved through mmap */
#define DMA_DEV_REG_NR_REGIONS  0x2c    /* RO: DMA regions registered now */
#define DMA_DEV_REG_NR_MAPPED   0x30    /* RO: of which came with an fd */
#define DMA_DEV_REG_NR_MAPS     0x34    /* RO: DMA region registrations */
#define DMA_DEV_REG_NR_UNMAPS   0x38    /* RO: DMA region removals */
#define DMA_DEV_REG_QUERY_ADDR  0x40    /* RW, 64-bit: an IOVA */
#define DMA_DEV_REG_QUERY_BASE  0x48    /* RO, 64-bit: start of its region */
#define DMA_DEV_REG_QUERY_SIZE  0x50    /* RO, 64-bit: its size, 0: none */
#define DMA_DEV_REG_FEATURES    0x58    /* RO: DMA_DEV_FEAT_* */
#define DMA_DEV_BAR0_SIZE       0x1000

#define DMA_DEV_ID_MAGIC        0x444d4131  /* "DMA1" */
#define DMA_DEV_CMD_TO_DEVICE   1   /* guest -> buffer, vfu_sgl_read */
#define DMA_DEV_CMD_TO_GUEST    2   /* buffer -> guest, vfu_sgl_write */
/* guest -> buffer, the 4 KiB pages last first, with one vfu_sgl_read() */
#define DMA_DEV_CMD_PAGES_REVERSED  3
#define DMA_DEV_PAGE            0x1000

#define DMA_DEV_BUF_SIZE        0x10000

/* DMA by message at any offset inside a DMA region */
#define DMA_DEV_FEAT_MSG_OFFSET 1
/* vfu_sgl_read() of many entries (DMA_DEV_CMD_PAGES_REVERSED) */
#define DMA_DEV_FEAT_SGL_MANY   2

#ifndef DMA_DEV_SGL_OFFSET
#define DMA_DEV_SGL_OFFSET      0   /* the library ignores sg->offset */
#endif
#ifndef DMA_DEV_SGL_MANY
#define DMA_DEV_SGL_MANY        0   /* vfu_sgl_read() takes one entry */
#endif

typedef struct DmaRegion {
    uint64_t iova;
    uint64_t size;
    bool mapped;                /* vaddr valid: came with an fd */
} DmaRegion;

typedef struct DmaDevice {
    vfu_ctx_t *ctx;
    uint64_t addr;
    uint32_t len;
    uint32_t buf_offset;
    uint32_t cmd;
    uint32_t status;
    uint32_t done;
    uint32_t msg_bytes;
    uint32_t map_bytes;
    uint32_t nr_maps;
    uint32_t nr_unmaps;
    uint64_t query_addr;
    DmaRegion *regions;
    unsigned nr_regions;
    dma_sg_t *sg;               /* room for one entry */
    uint8_t buf[DMA_DEV_BUF_SIZE];
} DmaDevice;

static bool verbose;

static void dma_dev_log(vfu_ctx_t *ctx, int level, const char *msg)
{
    fprintf(stderr, "dma-device: %s\n", msg);
}

/* Is [offset, offset + count) a valid access to a region of @size? */
static bool dma_dev_access_ok(loff_t offset, size_t count, size_t size)
{
    return offset >= 0 && count <= size && (size_t)offset <= size - count;
}

static const DmaRegion *dma_dev_find_region(DmaDevice *d, uint64_t addr)
{
    unsigned i;

    for (i = 0; i < d->nr_regions; i++) {
        if (addr >= d->regions[i].iova &&
            addr - d->regions[i].iova < d->regions[i].size) {
            return &d->regions[i];
        }
    }
    return NULL;
}

/*
 * Move @len bytes between guest address @addr and @data, one DMA region
 * at a time: vfu_sgl_read()/vfu_sgl_write() take a single entry.
 * Returns 0 or -errno.
 */
static int dma_dev_transfer(DmaDevice *d, uint64_t addr, uint8_t *data,
                            uint32_t len, bool to_guest)
{
    int prot = to_guest ? PROT_WRITE : PROT_READ;

    while (len) {
        const DmaRegion *r = dma_dev_find_region(d, addr);
        uint32_t chunk = len;
        struct iovec iov;
        int ret;

        if (r && r->iova + r->size - addr < chunk) {
            chunk = r->iova + r->size - addr;
        }
        /* An address outside every region fails here, with ENOENT */
        ret = vfu_addr_to_sgl(d->ctx, (vfu_dma_addr_t)(uintptr_t)addr, chunk,
                              d->sg, 1, prot);
        if (ret != 1) {
            return ret == -1 && errno ? -errno : -EFAULT;
        }
        if (r && r->mapped) {
            if (vfu_sgl_get(d->ctx, d->sg, &iov, 1, 0) < 0) {
                return errno ? -errno : -EFAULT;
            }
            if (to_guest) {
                memcpy(iov.iov_base, data, chunk);
            } else {
                memcpy(data, iov.iov_base, chunk);
            }
            vfu_sgl_put(d->ctx, d->sg, &iov, 1);
            d->map_bytes += chunk;
        } else if (!DMA_DEV_SGL_OFFSET && (!r || addr != r->iova)) {
            vfu_log(d->ctx, LOG_ERR, "DMA by message at 0x%llx: not the "
                    "start of a DMA region, which is all libvfio-user's "
                    "vfu_sgl_read/write reach", (unsigned long long)addr);
            return -ENOTSUP;
        } else {
            ret = to_guest ? vfu_sgl_write(d->ctx, d->sg, 1, data)
                           : vfu_sgl_read(d->ctx, d->sg, 1, data);
            if (ret < 0) {
                return errno ? -errno : -EIO;
            }
            d->msg_bytes += chunk;
        }
        addr += chunk;
        data += chunk;
        len -= chunk;
    }
    return 0;
}

/*
 * The @len / 4 KiB pages at guest address @addr into @data, the last
 * first, with one vfu_sgl_read() of as many entries: their DMA_READs go
 * out together and each reply must land in its own place.
 * Returns 0 or -errno.
 */
static int dma_dev_pages_reversed(DmaDevice *d, uint64_t addr,
                                  uint8_t *data, uint32_t len)
{
    size_t n = len / DMA_DEV_PAGE, i;
    uint8_t *sgs;
    int ret = 0;

    if (!DMA_DEV_SGL_MANY) {
        return -EOPNOTSUPP;
    }
    if (n == 0 || len % DMA_DEV_PAGE) {
        return -EINVAL;
    }
    sgs = calloc(n, dma_sg_size());
    if (!sgs) {
        return -ENOMEM;
    }
    for (i = 0; i < n && !ret; i++) {
        uint64_t page = addr + (n - 1 - i) * DMA_DEV_PAGE;

        if (vfu_addr_to_sgl(d->ctx, (vfu_dma_addr_t)(uintptr_t)page,
                            DMA_DEV_PAGE,
                            (dma_sg_t *)(sgs + i * dma_sg_size()), 1,
                            PROT_READ) != 1) {
            ret = errno ? -errno : -EFAULT;
        }
    }
    if (!ret && vfu_sgl_read(d->ctx, (dma_sg_t *)sgs, n, data) < 0) {
        ret = errno ? -errno : -EIO;
    }
    if (!ret) {
        d->msg_bytes += len;
    }
    free(sgs);
    return ret;
}

static void dma_dev_run(DmaDevice *d)
{
    bool to_guest = false;

    switch (d->cmd) {
    case DMA_DEV_CMD_TO_DEVICE:
    case DMA_DEV_CMD_PAGES_REVERSED:
        break;
    case DMA_DEV_CMD_TO_GUEST:
        to_guest = true;
        break;
    default:
        d->status = EINVAL;
        return;
    }
    if (d->buf_offset > DMA_DEV_BUF_SIZE ||
        d->len > DMA_DEV_BUF_SIZE - d->buf_offset) {
        d->status = EINVAL;
        return;
    }
    if (d->cmd == DMA_DEV_CMD_PAGES_REVERSED) {
        d->status = -dma_dev_pages_reversed(d, d->addr,
                                            d->buf + d->buf_offset, d->len);
    } else {
        d->status = -dma_dev_transfer(d, d->addr, d->buf + d->buf_offset,
                                      d->len, to_guest);
    }
    if (d->status) {
        vfu_log(d->ctx, LOG_ERR, "DMA %s of %u bytes at 0x%llx failed: %s",
                to_guest ? "to guest" : "from guest", d->len,
                (unsigned long long)d->addr, strerror(d->status));
    } else {
        d->done++;
    }
}

static void dma_dev_put32(uint8_t *regs, unsigned offset, uint32_t val)
{
    val = htole32(val);
    memcpy(regs + offset, &val, sizeof(val));
}

static uint32_t dma_dev_get32(const uint8_t *regs, unsigned offset)
{
    uint32_t val;

    memcpy(&val, regs + offset, sizeof(val));
    return le32toh(val);
}

static void dma_dev_put64(uint8_t *regs, unsigned offset, uint64_t val)
{
    dma_dev_put32(regs, offset, val);
    dma_dev_put32(regs, offset + 4, val >> 32);
}

static uint64_t dma_dev_get64(const uint8_t *regs, unsigned offset)
{
    return dma_dev_get32(regs, offset) |
           (uint64_t)dma_dev_get32(regs, offset + 4) << 32;
}

static ssize_t dma_dev_bar0_access(vfu_ctx_t *ctx, char *buf, size_t count,
                                   loff_t offset, bool is_write)
{
    DmaDevice *d = vfu_get_private(ctx);
    uint8_t regs[DMA_DEV_BAR0_SIZE] = { 0 };
    const DmaRegion *r = dma_dev_find_region(d, d->query_addr);

    if (!dma_dev_access_ok(offset, count, sizeof(regs))) {
        errno = EINVAL;
        return -1;
    }

    /*
     * Any width at any offset: build the register file, apply the access
     * to it, and take the writable registers back.
     */
    dma_dev_put32(regs, DMA_DEV_REG_ID, DMA_DEV_ID_MAGIC);
    dma_dev_put64(regs, DMA_DEV_REG_ADDR, d->addr);
    dma_dev_put32(regs, DMA_DEV_REG_LEN, d->len);
    dma_dev_put32(regs, DMA_DEV_REG_BUF_OFFSET, d->buf_offset);
    dma_dev_put32(regs, DMA_DEV_REG_CMD, d->cmd);
    dma_dev_put32(regs, DMA_DEV_REG_STATUS, d->status);
    dma_dev_put32(regs, DMA_DEV_REG_DONE, d->done);
    dma_dev_put32(regs, DMA_DEV_REG_MSG_BYTES, d->msg_bytes);
    dma_dev_put32(regs, DMA_DEV_REG_MAP_BYTES, d->map_bytes);
    dma_dev_put32(regs, DMA_DEV_REG_NR_REGIONS, d->nr_regions);
    dma_dev_put32(regs, DMA_DEV_REG_NR_MAPPED, 0);
    dma_dev_put32(regs, DMA_DEV_REG_NR_MAPS, d->nr_maps);
    dma_dev_put32(regs, DMA_DEV_REG_NR_UNMAPS, d->nr_unmaps);
    dma_dev_put64(regs, DMA_DEV_REG_QUERY_ADDR, d->query_addr);
    dma_dev_put64(regs, DMA_DEV_REG_QUERY_BASE, r ? r->iova : UINT64_MAX);
    dma_dev_put64(regs, DMA_DEV_REG_QUERY_SIZE, r ? r->size : 0);
    dma_dev_put32(regs, DMA_DEV_REG_FEATURES,
                  (DMA_DEV_SGL_OFFSET ? DMA_DEV_FEAT_MSG_OFFSET : 0) |
                  (DMA_DEV_SGL_MANY ? DMA_DEV_FEAT_SGL_MANY : 0));
    if (!is_write) {
        unsigned i, mapped = 0;

        for (i = 0; i < d->nr_regions; i++) {
            mapped += d->regions[i].mapped;
        }
        dma_dev_put32(regs, DMA_DEV_REG_NR_MAPPED, mapped);
        memcpy(buf, regs + offset, count);
        return count;
    }

    memcpy(regs + offset, buf, count);
    d->addr = dma_dev_get64(regs, DMA_DEV_REG_ADDR);
    d->query_addr = dma_dev_get64(regs, DMA_DEV_REG_QUERY_ADDR);
    d->len = dma_dev_get32(regs, DMA_DEV_REG_LEN);
    d->buf_offset = dma_dev_get32(regs, DMA_DEV_REG_BUF_OFFSET);
    if (offset < DMA_DEV_REG_CMD + 4 && offset + count > DMA_DEV_REG_CMD) {
        d->cmd = dma_dev_get32(regs, DMA_DEV_REG_CMD);
        dma_dev_run(d);
    }
    return count;
}

static ssize_t dma_dev_bar1_access(vfu_ctx_t *ctx, char *buf, size_t count,
                                   loff_t offset, bool is_write)
{
    DmaDevice *d = vfu_get_private(ctx);

    if (!dma_dev_access_ok(offset, count, sizeof(d->buf))) {
        errno = EINVAL;
        return -1;
    }
    if (is_write) {
        memcpy(d->buf + offset, buf, count);
    } else {
        memcpy(buf, d->buf + offset, count);
    }
    return count;
}

static void dma_dev_dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    DmaDevice *d = vfu_get_private(ctx);
    DmaRegion *r;

    r = realloc(d->regions, (d->nr_regions + 1) * sizeof(*r));
    if (!r) {
        /* Only our bookkeeping is lost: the DMA then uses messages */
        vfu_log(ctx, LOG_ERR, "out of memory for DMA region");
        return;
    }
    d->regions = r;
    r = &d->regions[d->nr_regions++];
    r->iova = (uintptr_t)info->iova.iov_base;
    r->size = info->iova.iov_len;
    r->mapped = info->vaddr != NULL;
    d->nr_maps++;
    if (verbose) {
        vfu_log(ctx, LOG_INFO, "DMA region 0x%llx+0x%llx%s",
                (unsigned long long)r->iova, (unsigned long long)r->size,
                r->mapped ? " mapped" : "");
    }
}

static void dma_dev_dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    DmaDevice *d = vfu_get_private(ctx);
    uint64_t iova = (uintptr_t)info->iova.iov_base;
    unsigned i;

    d->nr_unmaps++;
    for (i = 0; i < d->nr_regions; i++) {
        if (d->regions[i].iova == iova &&
            d->regions[i].size == info->iova.iov_len) {
            d->regions[i] = d->regions[--d->nr_regions];
            return;
        }
    }
}

static void dma_dev_die(const char *what)
{
    fprintf(stderr, "dma-device: %s: %s\n", what, strerror(errno));
    exit(EXIT_FAILURE);
}

static vfu_ctx_t *dma_dev_create(DmaDevice *d, const char *path)
{
    vfu_ctx_t *ctx;

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, path, 0, d, VFU_DEV_TYPE_PCI);
    if (!ctx) {
        dma_dev_die("cannot create the vfio-user context");
    }
    d->ctx = ctx;
    if (vfu_setup_log(ctx, dma_dev_log, verbose ? LOG_DEBUG : LOG_ERR) < 0) {
        dma_dev_die("vfu_setup_log");
    }
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                     PCI_HEADER_TYPE_NORMAL, 0) < 0) {
        dma_dev_die("vfu_pci_init");
    }
    vfu_pci_set_id(ctx, DMA_DEV_VENDOR_ID, DMA_DEV_DEVICE_ID, 0, 0);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, DMA_DEV_BAR0_SIZE,
                         dma_dev_bar0_access,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0) {
        dma_dev_die("cannot set up BAR0");
    }
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR1_REGION_IDX, DMA_DEV_BUF_SIZE,
                         dma_dev_bar1_access,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0) {
        dma_dev_die("cannot set up BAR1");
    }
    if (vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1) < 0) {
        dma_dev_die("cannot set up INTx");
    }
    /* Without these callbacks DMA_MAP fails and nothing is mapped */
    if (vfu_setup_device_dma(ctx, dma_dev_dma_register,
                             dma_dev_dma_unregister) < 0) {
        dma_dev_die("cannot set up DMA");
    }
    if (vfu_realize_ctx(ctx) < 0) {
        dma_dev_die("cannot realize the device");
    }
    return ctx;
}

int main(int argc, char **argv)
{
    DmaDevice *d;
    int opt, ret;

    while ((opt = getopt(argc, argv, "v")) != -1) {
        if (opt != 'v') {
            goto usage;
        }
        verbose = true;
    }
    if (optind != argc - 1) {
        goto usage;
    }

    d = calloc(1, sizeof(*d));
    if (!d) {
        dma_dev_die("calloc");
    }
    d->sg = calloc(1, dma_sg_size());
    if (!d->sg) {
        dma_dev_die("calloc");
    }
    dma_dev_create(d, argv[optind]);

    if (vfu_attach_ctx(d->ctx) < 0) {
        dma_dev_die("cannot accept a client");
    }
    do {
        ret = vfu_run_ctx(d->ctx);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0 && errno != ENOTCONN && errno != ESHUTDOWN) {
        dma_dev_die("vfu_run_ctx");
    }

    /* The client went away: we are done */
    vfu_destroy_ctx(d->ctx);
    free(d->regions);
    free(d->sg);
    free(d);
    return EXIT_SUCCESS;

usage:
    fprintf(stderr, "Usage: %s [-v] SOCKET_PATH\n", argv[0]);
    return EXIT_FAILURE;
}
