/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for the vetting of the PCI personality a vfio-user server
 * describes (hw/vfio-user/pci-vet.c): config space sizes, capability
 * chains, MSI and MSI-X fields, the ROM BAR.
 *
 * The test server's hook replaces the device's config space (and the
 * sizes of its config and ROM regions) with an image the test builds.
 * Each bad case must make device_add fail with an error naming the
 * field, QEMU must live on, and a retry with the server's own device
 * must work.  The good cases check that a valid personality still
 * works, and that a server which changes the vetted fields after the
 * check (or later, at run time) does not reach hw/vfio with them.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define SLOT            4
#define DEVFN           QPCI_DEVFN(SLOT, 0)
#define WAIT_MS         5000
#define CFG_SIZE        4096
#define MSIX_VECTORS    4       /* the test server's default */
#define ROM_MASK        0xfffff800u
#define STD_CFG_SIZE    PCI_CFG_SPACE_SIZE
/* An extended capability header (PCIe: ID, version, next pointer) */
#define EXT_CAP(id, ver, next) ((id) | ((ver) << 16) | ((next) << 20))

/*
 * The personality the hook serves.  The test sets it up before it arms
 * the hook; the server thread then owns it.
 */
typedef struct Personality {
    uint8_t config[CFG_SIZE];       /* the image served for config reads */
    uint8_t later[CFG_SIZE];        /* served after the first whole read */
    bool use_later;                 /* switch to @later after that read */
    uint64_t config_size;           /* config region size reported */
    uint64_t rom_size;              /* ROM region size reported */
    uint32_t rom_sized;             /* ROM BAR after a sizing write */
    bool rom_sizing;
    int whole_reads;                /* reads of the whole config space */
    int rom_reads;                  /* REGION_READs of the ROM */
    int armed;                      /* atomic */
} Personality;

typedef struct TestCtx {
    VUFixture f;
    Personality p;
} TestCtx;

static void reply(GByteArray *out, const VUTestMsg *msg, const void *payload,
                  size_t len)
{
    VFIOUserHdr hdr = {
        .id = msg->hdr.id, .command = msg->hdr.command,
        .size = sizeof(hdr) + len, .flags = VFIO_USER_REPLY,
    };

    g_byte_array_append(out, (uint8_t *)&hdr, sizeof(hdr));
    g_byte_array_append(out, payload, len);
}

static VUTestHookAction region_info(Personality *p, const VUTestMsg *msg,
                                    GByteArray *out)
{
    VFIOUserRegionInfo info;
    uint32_t index = ldl_le_p(msg->payload + 8);

    if (index != VFIO_PCI_CONFIG_REGION_INDEX &&
        index != VFIO_PCI_ROM_REGION_INDEX) {
        return VU_TEST_HOOK_CONTINUE;
    }
    memset(&info, 0, sizeof(info));
    info.argsz = sizeof(info);
    info.index = index;
    info.flags = VFIO_REGION_INFO_FLAG_READ |
                 (index == VFIO_PCI_CONFIG_REGION_INDEX ?
                  VFIO_REGION_INFO_FLAG_WRITE : 0);
    info.size = index == VFIO_PCI_CONFIG_REGION_INDEX ? p->config_size :
                p->rom_size;
    reply(out, msg, &info, sizeof(info));
    return VU_TEST_HOOK_REPLACE;
}

static VUTestHookAction config_rw(Personality *p, const VUTestMsg *msg,
                                  GByteArray *out, bool write)
{
    VFIOUserRegionRW rw;
    g_autofree uint8_t *buf = NULL;
    const uint8_t *image;

    if (msg->payload_size < sizeof(rw)) {
        return VU_TEST_HOOK_CONTINUE;
    }
    memcpy(&rw, msg->payload, sizeof(rw));
    if (rw.region == VFIO_PCI_ROM_REGION_INDEX && !write) {
        p->rom_reads++;
    }
    if (rw.region != VFIO_PCI_CONFIG_REGION_INDEX) {
        return VU_TEST_HOOK_CONTINUE;
    }
    if (write) {
        const uint8_t *data = msg->payload + sizeof(rw);

        if (msg->payload_size < sizeof(rw) + rw.count ||
            rw.offset > CFG_SIZE || rw.count > CFG_SIZE - rw.offset) {
            return VU_TEST_HOOK_CONTINUE;
        }
        if (rw.offset == PCI_ROM_ADDRESS && rw.count == 4) {
            p->rom_sizing = (ldl_le_p(data) & ROM_MASK) == ROM_MASK;
        } else {
            /* Command register and the like: it reads back */
            memcpy(p->config + rw.offset, data, rw.count);
            memcpy(p->later + rw.offset, data, rw.count);
        }
        reply(out, msg, &rw, sizeof(rw));
        return VU_TEST_HOOK_REPLACE;
    }
    image = p->use_later && p->whole_reads > 0 ? p->later : p->config;
    if (rw.offset == 0 && rw.count >= STD_CFG_SIZE) {
        p->whole_reads++;
    }
    buf = g_malloc0(sizeof(rw) + rw.count);
    memcpy(buf, &rw, sizeof(rw));
    for (uint32_t i = 0; i < rw.count; i++) {
        uint64_t off = rw.offset + i;
        uint8_t v = off < CFG_SIZE ? image[off] : 0;

        if (p->rom_sizing && off >= PCI_ROM_ADDRESS &&
            off < PCI_ROM_ADDRESS + 4) {
            v = p->rom_sized >> (8 * (off - PCI_ROM_ADDRESS));
        }
        buf[sizeof(rw) + i] = v;
    }
    reply(out, msg, buf, sizeof(rw) + rw.count);
    return VU_TEST_HOOK_REPLACE;
}

static VUTestHookAction personality_hook(VUTestServer *s, const VUTestMsg *msg,
                                         GByteArray *out, void *opaque)
{
    Personality *p = opaque;

    if (!qatomic_load_acquire(&p->armed) || msg->payload_size < 12) {
        return VU_TEST_HOOK_CONTINUE;
    }
    switch (msg->hdr.command) {
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        return region_info(p, msg, out);
    case VFIO_USER_REGION_READ:
        return config_rw(p, msg, out, false);
    case VFIO_USER_REGION_WRITE:
        return config_rw(p, msg, out, true);
    default:
        return VU_TEST_HOOK_CONTINUE;
    }
}

/*
 * A valid image of what the test server models (vfio-user-server.h):
 * MSI at 0x40, MSI-X at 0x50 with table and PBA in BAR2, INTx pin A.
 */
static void valid_config(uint8_t *c)
{
    memset(c, 0, CFG_SIZE);
    stw_le_p(c + PCI_VENDOR_ID, 0x1234);
    stw_le_p(c + PCI_DEVICE_ID, 0x5655);
    stw_le_p(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
    stw_le_p(c + PCI_CLASS_DEVICE, 0x00ff);
    stl_le_p(c + PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_TYPE_32);
    stl_le_p(c + PCI_BASE_ADDRESS_1, PCI_BASE_ADDRESS_MEM_PREFETCH);
    stl_le_p(c + PCI_BASE_ADDRESS_2, PCI_BASE_ADDRESS_MEM_TYPE_32);
    c[PCI_CAPABILITY_LIST] = 0x40;
    c[PCI_INTERRUPT_PIN] = 1;
    c[0x40 + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
    c[0x40 + PCI_CAP_LIST_NEXT] = 0x50;
    stw_le_p(c + 0x40 + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
    c[0x50 + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSIX;
    stw_le_p(c + 0x50 + PCI_MSIX_FLAGS, MSIX_VECTORS - 1);
    stl_le_p(c + 0x50 + PCI_MSIX_TABLE, VU_TEST_MSIX_TABLE_OFFSET | 2);
    stl_le_p(c + 0x50 + PCI_MSIX_PBA, VU_TEST_MSIX_PBA_OFFSET | 2);
}

static void ctx_start(TestCtx *c)
{
    VUTestServerConfig cfg;

    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = personality_hook;
    cfg.hook_opaque = &c->p;
    vu_fixture_server(&c->f, "vfio-user-pci-vet", &cfg);
    c->f.qts = qtest_initf("-machine pc -m 128");
    valid_config(c->p.config);
    c->p.config_size = STD_CFG_SIZE;
}

static void ctx_stop(TestCtx *c)
{
    qatomic_set(&c->p.armed, 0);
    vu_fixture_stop(&c->f);
}

static QDict *device_add(TestCtx *c, const char *id)
{
    return qtest_qmp(c->f.qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': %s, 'addr': '4.0',"
                     "'socket': {'type': 'unix', 'path': %s}}}",
                     id, c->f.sock);
}

static void assert_alive(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'query-status'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* The device was added, answers on BAR0, and QEMU lives. */
static void assert_works(TestCtx *c)
{
    vu_fixture_find_device(&c->f, DEVFN);
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    assert_alive(c);
}

static void add_must_work(TestCtx *c, const char *id)
{
    QDict *resp = device_add(c, id);

    if (qdict_haskey(resp, "error")) {
        g_test_message("device_add: %s", qdict_get_str(
                           qdict_get_qdict(resp, "error"), "desc"));
    }
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    assert_works(c);
}

/*
 * device_add fails, naming the device, its socket and @expect; QEMU
 * lives, and the server's own device then works.
 */
static void add_must_fail(TestCtx *c, const char *expect)
{
    QDict *resp;
    const char *desc;

    qatomic_store_release(&c->p.armed, 1);
    resp = device_add(c, "vu0");
    g_assert(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_test_message("device_add: %s", desc);
    g_assert(strstr(desc, "vfio-user-pci 'vu0'"));
    g_assert(strstr(desc, c->f.sock));
    g_assert(strstr(desc, expect));
    qobject_unref(resp);
    assert_alive(c);

    qatomic_set(&c->p.armed, 0);
    g_assert(vu_test_server_wait_disconnected(c->f.srv, WAIT_MS));
    add_must_work(c, "vu1");
}

/* ---------------------------------------------------------------------- */
/* Bad personalities: each is refused with the field and its value */

typedef struct BadCase {
    const char *name;
    void (*make)(Personality *p);
    const char *expect;
} BadCase;

static void make_size_0x20(Personality *p)
{
    p->config_size = 0x20;
}

static void make_size_0(Personality *p)
{
    p->config_size = 0;
}

static void make_size_8k(Personality *p)
{
    p->config_size = 2 * CFG_SIZE;
}

static void make_all_ones(Personality *p)
{
    memset(p->config, 0xff, CFG_SIZE);
}

static void make_header_bridge(Personality *p)
{
    p->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_BRIDGE;
}

static void make_pin_5(Personality *p)
{
    p->config[PCI_INTERRUPT_PIN] = 5;
}

static void make_cap_self_loop(Personality *p)
{
    p->config[0x50 + PCI_CAP_LIST_NEXT] = 0x50;
}

static void make_cap_pair_loop(Personality *p)
{
    p->config[0x50 + PCI_CAP_LIST_NEXT] = 0x40;
}

static void make_cap_in_header(Personality *p)
{
    p->config[PCI_CAPABILITY_LIST] = 0x20;
}

static void make_cap_unaligned(Personality *p)
{
    p->config[0x40 + PCI_CAP_LIST_NEXT] = 0x51;
}

static void make_cap_twice(Personality *p)
{
    p->config[0x50 + PCI_CAP_LIST_NEXT] = 0x60;
    p->config[0x60 + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
}

static void make_msi_mmc7(Personality *p)
{
    stw_le_p(p->config + 0x40 + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT |
                                               PCI_MSI_FLAGS_QMASK);
}

static void make_msi_past_end(Personality *p)
{
    p->config[0x50 + PCI_CAP_LIST_NEXT] = 0xf0;
    p->config[0xf0 + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
    p->config[0x40 + PCI_CAP_LIST_ID] = PCI_CAP_ID_VNDR;
    stw_le_p(p->config + 0xf0 + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT |
                                               PCI_MSI_FLAGS_MASKBIT);
}

static void make_msix_bir5(Personality *p)
{
    stl_le_p(p->config + 0x50 + PCI_MSIX_TABLE, 5);
}

static void make_msix_bir7(Personality *p)
{
    stl_le_p(p->config + 0x50 + PCI_MSIX_TABLE, 7);
}

static void make_msix_pba_bir7(Personality *p)
{
    stl_le_p(p->config + 0x50 + PCI_MSIX_PBA, 0x800 | 7);
}

static void make_msix_table_too_big(Personality *p)
{
    stw_le_p(p->config + 0x50 + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_QSIZE);
}

static void make_msix_pba_outside(Personality *p)
{
    stl_le_p(p->config + 0x50 + PCI_MSIX_PBA, VU_TEST_BAR2_SIZE | 2);
}

static void make_pcie_cap_small(Personality *p)
{
    p->config[0x50 + PCI_CAP_LIST_NEXT] = 0xfc;
    p->config[0xfc + PCI_CAP_LIST_ID] = PCI_CAP_ID_EXP;
}

static void make_ext(Personality *p, uint16_t next)
{
    p->config_size = CFG_SIZE;
    stl_le_p(p->config + STD_CFG_SIZE,
             EXT_CAP(PCI_EXT_CAP_ID_DSN, 1, next));
}

static void make_ext_loop(Personality *p)
{
    make_ext(p, STD_CFG_SIZE);
}

static void make_ext_into_std(Personality *p)
{
    make_ext(p, 0x40);
}

static void make_ext_small(Personality *p)
{
    make_ext(p, 0x104);
    stl_le_p(p->config + 0x104, EXT_CAP(PCI_EXT_CAP_ID_DSN, 1, 0));
}

static void make_rebar_overflow(Personality *p)
{
    make_ext(p, 0xff0);
    stl_le_p(p->config + 0xff0, EXT_CAP(PCI_EXT_CAP_ID_REBAR, 1, 0));
    stl_le_p(p->config + 0xff0 + PCI_REBAR_CTRL,
             6 << PCI_REBAR_CTRL_NBAR_SHIFT);
}

static void make_rom_not_pow2(Personality *p)
{
    p->rom_sized = 0xffffe800;
    p->rom_size = 0x2000;
}

static void make_rom_too_big(Personality *p)
{
    p->rom_sized = 0xfe000000;
    p->rom_size = 32 * 1024 * 1024;
}

static void make_rom_unbacked(Personality *p)
{
    p->rom_sized = 0xffff0000;
    p->rom_size = 0x1000;
}

static void make_rom_region_huge(Personality *p)
{
    p->rom_sized = ROM_MASK;
    p->rom_size = 1ULL << 40;
}

static const BadCase bad_cases[] = {
    { "config-size-0x20", make_size_0x20, "config space region of 0x20" },
    { "config-size-0", make_size_0, "config space region of 0x0 bytes" },
    { "config-size-8k", make_size_8k, "config space region of 0x2000" },
    { "all-ones", make_all_ones, "vendor ID 0xffff" },
    { "header-bridge", make_header_bridge, "header type 0x01" },
    { "intx-pin-5", make_pin_5, "interrupt pin 5" },
    { "cap-self-loop", make_cap_self_loop,
      "capability list loops: the capability at 0x50 points back to 0x50" },
    { "cap-pair-loop", make_cap_pair_loop,
      "capability list loops: the capability at 0x50 points back to 0x40" },
    { "cap-in-header", make_cap_in_header, "at 0x34 points to 0x20" },
    { "cap-unaligned", make_cap_unaligned, "at 0x40 points to 0x51" },
    { "cap-twice", make_cap_twice, "capability 0x05 at 0x60 appears twice" },
    { "msi-128-vectors", make_msi_mmc7, "Multiple Message Capable 7" },
    { "msi-past-end", make_msi_past_end,
      "MSI capability at 0xf0 needs 0x18 bytes" },
    { "msix-table-bir5", make_msix_bir5, "table BIR 5 names no BAR" },
    { "msix-table-bir7", make_msix_bir7, "table BIR 7 is not a BAR" },
    { "msix-pba-bir7", make_msix_pba_bir7, "PBA BIR 7 is not a BAR" },
    { "msix-table-too-big", make_msix_table_too_big,
      "table of 0x8000 bytes at offset 0x0 does not fit BAR2" },
    { "msix-pba-outside", make_msix_pba_outside,
      "PBA of 0x8 bytes at offset 0x1000 does not fit BAR2" },
    { "pcie-cap-too-small", make_pcie_cap_small,
      "PCI Express capability at 0xfc has 0x4 bytes" },
    { "ext-cap-loop", make_ext_loop, "extended capability list loops" },
    { "ext-cap-into-std", make_ext_into_std, "at 0x100 points to 0x40" },
    { "ext-cap-4-bytes", make_ext_small, "at 0x100 has 0x4 bytes" },
    { "ext-rebar-overflow", make_rebar_overflow,
      "resizable BAR capability at 0xff0: 6 BARs" },
    { "rom-0x1800", make_rom_not_pow2, "ROM BAR reads back 0xffffe800" },
    { "rom-32m", make_rom_too_big, "size 0x2000000 is not a power of two "
      "up to 16 MiB" },
    { "rom-unbacked", make_rom_unbacked, "the ROM region has 0x1000" },
    { "rom-region-1t", make_rom_region_huge,
      "the ROM region has 0x10000000000" },
};

static void test_bad(const void *data)
{
    const BadCase *bc = data;
    TestCtx c = {};

    ctx_start(&c);
    bc->make(&c.p);
    add_must_fail(&c, bc->expect);
    ctx_stop(&c);
}

/* ---------------------------------------------------------------------- */
/* Good personalities, and servers that change them after the check */

/* A 64 KiB ROM: realize works and the guest sizes the ROM BAR to it. */
static void test_rom_ok(void)
{
    TestCtx c = {};
    uint32_t bar;

    ctx_start(&c);
    c.p.rom_sized = 0xffff0000;
    c.p.rom_size = 0x10000;
    qatomic_store_release(&c.p.armed, 1);
    add_must_work(&c, "vu0");
    qpci_config_writel(c.f.dev, PCI_ROM_ADDRESS, ROM_MASK);
    bar = qpci_config_readl(c.f.dev, PCI_ROM_ADDRESS);
    g_assert_cmphex(bar & ROM_MASK, ==, 0xffff0000);
    ctx_stop(&c);
}

/* A PCI Express-sized config space with a valid extended capability */
static void test_pcie_ok(void)
{
    TestCtx c = {};

    ctx_start(&c);
    make_ext(&c.p, 0);
    qatomic_store_release(&c.p.armed, 1);
    add_must_work(&c, "vu0");
    ctx_stop(&c);
}

/*
 * After the vetting read, the server answers with loops, absurd MSI-X
 * BIRs, an invalid pin and a bad ROM size.  hw/vfio reads config space
 * again several times during realize; it must see the vetted values, and
 * so must the guest, also after a reset (which reads the pin again).
 */
static void test_changed_after_check(void)
{
    TestCtx c = {};
    uint8_t *l = c.p.later;

    ctx_start(&c);
    c.p.rom_sized = 0xffff0000;
    c.p.rom_size = 0x10000;
    valid_config(l);
    l[0x50 + PCI_CAP_LIST_NEXT] = 0x40;
    l[PCI_INTERRUPT_PIN] = 9;
    stw_le_p(l + 0x40 + PCI_MSI_FLAGS, PCI_MSI_FLAGS_QMASK);
    stl_le_p(l + 0x50 + PCI_MSIX_TABLE, 7);
    stl_le_p(l + 0x50 + PCI_MSIX_PBA, 7);
    stw_le_p(l + 0x50 + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_QSIZE);
    c.p.use_later = true;
    qatomic_store_release(&c.p.armed, 1);
    add_must_work(&c, "vu0");
    /* The switch did happen: hw/vfio read the whole space again. */
    g_assert_cmpint(c.p.whole_reads, >=, 2);
    c.p.rom_sized = 0xffffe800;

    g_assert_cmpint(qpci_config_readb(c.f.dev, PCI_INTERRUPT_PIN), ==, 1);
    g_assert_cmpint(qpci_config_readb(c.f.dev, 0x50 + PCI_CAP_LIST_NEXT),
                    ==, 0);
    g_assert_cmphex(qpci_config_readw(c.f.dev, 0x50 + PCI_MSIX_FLAGS) &
                    PCI_MSIX_FLAGS_QSIZE, ==, MSIX_VECTORS - 1);
    g_assert_cmphex(qpci_config_readw(c.f.dev, 0x40 + PCI_MSI_FLAGS) &
                    PCI_MSI_FLAGS_QMASK, ==, 0);
    qpci_config_writel(c.f.dev, PCI_ROM_ADDRESS, ROM_MASK);
    g_assert_cmphex(qpci_config_readl(c.f.dev, PCI_ROM_ADDRESS) & ROM_MASK,
                    ==, 0xffff0000);

    qtest_qmp_assert_success(c.f.qts, "{'execute': 'system_reset'}");
    qtest_qmp_eventwait(c.f.qts, "RESET");
    assert_works(&c);
    g_assert_cmpint(qpci_config_readb(c.f.dev, PCI_INTERRUPT_PIN), ==, 1);
    ctx_stop(&c);
}

/* A region keeps its size: a later GET_REGION_INFO may not grow the ROM */
static void test_region_resized(void)
{
    TestCtx c = {};

    ctx_start(&c);
    c.p.rom_sized = 0xffff0000;
    c.p.rom_size = 0x10000;
    qatomic_store_release(&c.p.armed, 1);
    add_must_work(&c, "vu0");
    /*
     * hw/vfio asks for the ROM's info when the guest first reads it, then
     * allocates and reads the whole region (1 GiB, by message, under the
     * BQL) if it is not refused.
     */
    c.p.rom_size = 1ULL << 30;
    qpci_config_writel(c.f.dev, PCI_ROM_ADDRESS, 0xfe000000 |
                       PCI_ROM_ADDRESS_ENABLE);
    qpci_config_writew(c.f.dev, PCI_COMMAND, PCI_COMMAND_MEMORY);
    /* Refused, so the ROM cannot be loaded: what it reads is not defined */
    qtest_readl(c.f.qts, 0xfe000000);
    assert_alive(&c);
    g_assert_cmpint(c.p.rom_reads, ==, 0);
    ctx_stop(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/vfio-user-pci-vet/refused/%s",
                            bad_cases[i].name);

        qtest_add_data_func(path, &bad_cases[i], test_bad);
    }
    qtest_add_func("/vfio-user-pci-vet/ok/rom-64k", test_rom_ok);
    qtest_add_func("/vfio-user-pci-vet/ok/pcie-ext-cap", test_pcie_ok);
    qtest_add_func("/vfio-user-pci-vet/pinned/changed-after-check",
                   test_changed_after_check);
    qtest_add_func("/vfio-user-pci-vet/pinned/rom-region-resized",
                   test_region_resized);
    return g_test_run();
}
