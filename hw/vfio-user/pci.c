/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user-pci: a PCI device emulated by a vfio-user server in another
 * process, reached over a UNIX socket.
 *
 * It is a vfio-pci-base device: hw/vfio's PCI code does config space
 * emulation, BARs, MSI/MSI-X/INTx and reset, through the device I/O
 * operations of device.c and the IOMMU backend of container.c instead of
 * a kernel fd.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-sockets.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "migration/blocker.h"
#include "qapi/qapi-commands-vfio.h"
#include "qapi/qapi-events-vfio.h"
#include "monitor/monitor.h"
#include "hw/qdev-properties.h"
#include "hw/pci/pci_bridge.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_aer.h"
#include "hw/vfio/pci.h"
#include "hw/vfio-user/container.h"
#include "hw/vfio-user/device.h"
#include "hw/vfio-user/migration.h"
#include "hw/vfio-user/reconnect.h"
#include "hw/vfio-user/restore.h"
#include "trace.h"

#define TYPE_VFIO_USER_PCI "vfio-user-pci"
OBJECT_DECLARE_SIMPLE_TYPE(VFIOUserPCIDevice, VFIO_USER_PCI)

#define VFIO_USER_DEFAULT_TIMEOUT_MS    5000
/*
 * An iothread's default poll-max-ns: longer than a local server's round
 * trip, short next to what sleeping and being woken costs a vCPU.
 */
#define VFIO_USER_DEFAULT_POLL_MAX_NS   32768
/* Past a millisecond, polling burns more CPU than any wake-up costs. */
#define VFIO_USER_MAX_POLL_MAX_NS       1000000

struct VFIOUserPCIDevice {
    VFIOPCIDevice parent_obj;

    SocketAddress *socket;
    /* -device's flat form: socket.type=unix,socket.path=... */
    char *flat_type;
    char *flat_path;
    char *flat_fd;
    uint32_t timeout_ms;
    uint32_t poll_max_ns;
    uint32_t reconnect_ms;
    bool post_writes;
    bool secure_dma;

    VFIOUserDevice user;        /* what the device operations work on */
    VFIOUserReconnect *reconnect;
    Error *migration_blocker;
};

/*
 * The server went away (main loop, after every waiter has failed): the
 * guest sees a failed device from now on.  Accesses by message already
 * read all ones and drop writes (device.c); stop direct access to the
 * memory the server had given for its BARs, so that reads there are all
 * ones too, drop a level interrupt that will never be acknowledged, and
 * tell the management layer.
 */
static void vfio_user_pci_server_died(void *opaque, const char *reason)
{
    VFIOUserPCIDevice *upci = opaque;
    VFIOPCIDevice *vdev = &upci->parent_obj;
    DeviceState *dev = DEVICE(upci);
    g_autofree char *path = object_get_canonical_path(OBJECT(upci));

    trace_vfio_user_pci_server_died(vdev->vbasedev.name, reason);
    if (vdev->intx.mmap_timer) {
        timer_del(vdev->intx.mmap_timer);
    }
    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        vfio_region_mmaps_set_enabled(&vdev->bars[i].region, false);
    }
    if (vdev->intx.pending) {
        vdev->intx.pending = false;
        pci_irq_deassert(&vdev->pdev);
    }
    qapi_event_send_vfio_user_server_lost(dev->id ? dev->id : "", path,
                                          reason);
    if (upci->reconnect) {
        vfio_user_reconnect_start(upci->reconnect);
    }
}

/*
 * The device is back, but what the server kept inside it (an NVMe
 * controller's queues) is new, and the guest's driver must reset it.
 * Below a PCIe port with AER, report what real hardware reports when a
 * device drops off its link: a Surprise Down error at the port, fatal
 * by default.  Linux answers with its error recovery: drivers quiesce,
 * the port resets its link (the device is reset, DEVICE_RESET), and
 * drivers restart their devices and resubmit what was in flight, rather
 * than fail it.  It is reported now, not at the death, when the reset
 * would find no device and the driver would give it up.  Elsewhere the
 * guest's driver notices on its own, when a request times out.
 */
static void vfio_user_pci_report_link_down(VFIOUserPCIDevice *upci)
{
    PCIDevice *port = pci_bridge_get_device(pci_get_bus(PCI_DEVICE(upci)));
    PCIEAERErr err = { .status = PCI_ERR_UNC_SDN };
    int ret = -ENODEV;

    /* A link to the device: a root or downstream port, not a bridge */
    if (port && pci_is_express(port) && port->exp.aer_cap &&
        (pcie_cap_get_type(port) == PCI_EXP_TYPE_ROOT_PORT ||
         pcie_cap_get_type(port) == PCI_EXP_TYPE_DOWNSTREAM)) {
        err.source_id = pci_requester_id(port);
        ret = pcie_aer_inject_error(port, &err);
    }
    trace_vfio_user_pci_link_down_reported(upci->parent_obj.vbasedev.name,
                                           ret);
}

/*
 * A new connection to the server (reconnect.c): if restore.c can put
 * the device back on it, it replaces the dead one.
 */
static bool vfio_user_pci_reconnected(void *opaque, VFIOUserProxy *proxy,
                                      Error **errp)
{
    VFIOUserPCIDevice *upci = opaque;
    VFIOPCIDevice *vdev = &upci->parent_obj;
    DeviceState *dev = DEVICE(upci);
    VFIOUserProxy *old = upci->user.proxy;
    g_autofree char *path = NULL;

    if (!vfio_user_pci_restore(vdev, &upci->user, proxy, errp)) {
        return false;
    }
    vfio_user_set_death_notifier(proxy, vfio_user_pci_server_died, upci);
    vfio_user_set_death_notifier(old, NULL, NULL);
    vfio_user_disconnect(old);
    /* A new server: its first refused answer is worth a line again */
    upci->user.said_bad_reply = false;

    path = object_get_canonical_path(OBJECT(upci));
    trace_vfio_user_pci_reconnected(vdev->vbasedev.name);
    qapi_event_send_vfio_user_server_reconnected(dev->id ? dev->id : "",
                                                 path);
    vfio_user_pci_report_link_down(upci);
    return true;
}

/* Size the ROM BAR as vfio_pci_size_rom() will, through the same ops. */
static bool vfio_user_pci_size_rom(VFIODevice *vbasedev, uint32_t *sized,
                                   Error **errp)
{
    const VFIODeviceIOOps *ops = vbasedev->io_ops;
    uint32_t orig, mask = cpu_to_le32(PCI_ROM_ADDRESS_MASK);
    uint8_t cfg = VFIO_PCI_CONFIG_REGION_INDEX;

    if (ops->region_read(vbasedev, cfg, PCI_ROM_ADDRESS, 4, &orig) != 4 ||
        ops->region_write(vbasedev, cfg, PCI_ROM_ADDRESS, 4, &mask,
                          false) != 4 ||
        ops->region_read(vbasedev, cfg, PCI_ROM_ADDRESS, 4, sized) != 4 ||
        ops->region_write(vbasedev, cfg, PCI_ROM_ADDRESS, 4, &orig,
                          false) != 4) {
        error_setg(errp, "cannot size the ROM BAR");
        return false;
    }
    *sized = le32_to_cpu(*sized);
    return true;
}

/* The size the server gives region @index, 0 if it has none */
static uint64_t vfio_user_pci_region_size(VFIODevice *vbasedev, int index)
{
    g_autofree struct vfio_region_info *info = NULL;

    if (index >= vbasedev->num_regions ||
        vfio_get_region_info(vbasedev, index, &info)) {
        return 0;
    }
    return info->size;
}

/*
 * Before hw/vfio parses config space, read it once and vet it
 * (pci-vet.c); from then on the device operations serve the bits hw/vfio
 * relies on from the vetted copy.
 */
static bool vfio_user_pci_vet_config(VFIOUserPCIDevice *upci, Error **errp)
{
    VFIOPCIDevice *vdev = &upci->parent_obj;
    VFIODevice *vbasedev = &vdev->vbasedev;
    PCIDevice *pdev = &vdev->pdev;
    VFIOUserPCIShape shape = {
        /* not vdev->config_size, which is 32 bits */
        .config_size = vfio_user_pci_region_size(vbasedev,
                                                 VFIO_PCI_CONFIG_REGION_INDEX),
        .rom_bar = !pdev->romfile && pdev->rom_bar,
    };
    /* A size vetting refuses is not worth a read; the vetting says why */
    bool sane = shape.config_size == PCI_CONFIG_SPACE_SIZE ||
                shape.config_size == PCIE_CONFIG_SPACE_SIZE;
    g_autofree uint8_t *config = g_malloc0(PCIE_CONFIG_SPACE_SIZE);
    g_autofree VFIOUserPCIVet *vet = g_new0(VFIOUserPCIVet, 1);

    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        shape.bar_size[i] = vdev->bars[i].region.size;
    }
    if (sane && vbasedev->io_ops->region_read(vbasedev,
                                              VFIO_PCI_CONFIG_REGION_INDEX, 0,
                                              shape.config_size, config) !=
                shape.config_size) {
        error_setg(errp, "cannot read config space");
        return false;
    }
    if (sane && shape.rom_bar) {
        shape.rom_region_size =
            vfio_user_pci_region_size(vbasedev, VFIO_PCI_ROM_REGION_INDEX);
        if (!vfio_user_pci_size_rom(vbasedev, &shape.rom_bar_sized, errp)) {
            return false;
        }
    }
    if (!vfio_user_pci_vet(vet, config, &shape, errp)) {
        error_prepend(errp, "refused the device's config space: ");
        return false;
    }
    upci->user.config_vet = g_steal_pointer(&vet);
    return true;
}

/*
 * -device's flat syntax cannot set a struct property, so socket.type,
 * socket.path and socket.str are properties of their own, folded into
 * the SocketAddress here; the JSON syntax sets "socket" directly.
 */
static bool vfio_user_pci_socket_from_flat(VFIOUserPCIDevice *upci,
                                           Error **errp)
{
    const char *type = upci->flat_type;
    SocketAddress *addr;

    if (!upci->flat_type && !upci->flat_path && !upci->flat_fd) {
        return true;
    }
    if (upci->socket) {
        error_setg(errp, "give either 'socket' or "
                   "'socket.*', not both");
        return false;
    }
    if (!type) {
        type = upci->flat_fd ? "fd" : "unix";
    }
    addr = g_new0(SocketAddress, 1);
    if (!strcmp(type, "unix") && upci->flat_path && !upci->flat_fd) {
        addr->type = SOCKET_ADDRESS_TYPE_UNIX;
        addr->u.q_unix.path = g_strdup(upci->flat_path);
    } else if (!strcmp(type, "fd") && upci->flat_fd && !upci->flat_path) {
        addr->type = SOCKET_ADDRESS_TYPE_FD;
        addr->u.fd.str = g_strdup(upci->flat_fd);
    } else {
        g_free(addr);
        error_setg(errp, "use socket.type=unix with "
                   "socket.path, or socket.type=fd with socket.str");
        return false;
    }
    upci->socket = addr;
    return true;
}

/* Check the properties; errors name the device, which they then prefix */
static bool vfio_user_pci_check_properties(VFIOUserPCIDevice *upci,
                                           Error **errp)
{
    if (!vfio_user_pci_socket_from_flat(upci, errp)) {
        return false;
    }
    if (!upci->socket) {
        error_setg(errp, "property 'socket' is required");
        error_append_hint(errp, "Give the vfio-user server's UNIX socket "
                          "with socket=PATH (or socket.path=PATH), or a "
                          "connected socket with socket.type=fd,"
                          "socket.str=FD.\n");
        return false;
    }
    if (!upci->timeout_ms) {
        /* 0 would give every message a deadline that has already passed */
        error_setg(errp, "x-msg-timeout must be at least 1 ms");
        return false;
    }
    if (upci->poll_max_ns > VFIO_USER_MAX_POLL_MAX_NS) {
        error_setg(errp, "x-poll-max-ns must be at most %u ns",
                   VFIO_USER_MAX_POLL_MAX_NS);
        return false;
    }
    return true;
}

/*
 * What names the device in every message, and in hw/vfio's own: the
 * device and its socket, so that no message needs to add either.
 */
static char *vfio_user_pci_name(const char *devname, SocketAddress *addr)
{
    if (addr->type == SOCKET_ADDRESS_TYPE_FD) {
        return g_strdup_printf("%s (socket fd %s)", devname, addr->u.fd.str);
    }
    return g_strdup_printf("%s (socket %s)", devname, addr->u.q_unix.path);
}

/*
 * Migrate with hw/vfio's migration.c where the server can migrate the
 * device; where it cannot, block migration with a message that says so
 * (hw/vfio's would blame the kernel), or with enable-migration=on fail.
 */
static bool vfio_user_pci_migration_setup(VFIOUserPCIDevice *upci,
                                          Error **errp)
{
    VFIODevice *vbasedev = &upci->parent_obj.vbasedev;
    uint64_t flags = 0;
    int ret;

    if (vbasedev->enable_migration == ON_OFF_AUTO_OFF) {
        return vfio_migration_realize(vbasedev, errp);
    }
    ret = vfio_user_migration_flags(vbasedev, &flags);
    if (!ret && !(flags & VFIO_MIGRATION_STOP_COPY)) {
        ret = -EOPNOTSUPP;
    }
    if (!ret) {
        return vfio_migration_realize(vbasedev, errp);
    }
    if (vbasedev->enable_migration == ON_OFF_AUTO_ON) {
        error_setg_errno(errp, -ret, "the server cannot migrate the device");
        return false;
    }
    error_setg_errno(&upci->migration_blocker, -ret,
                     "%s: the server cannot migrate the device",
                     vbasedev->name);
    return migrate_add_blocker_normal(&upci->migration_blocker, errp) >= 0;
}

static void vfio_user_pci_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(pdev);
    VFIOPCIDevice *vdev = VFIO_PCI(pdev);
    VFIODevice *vbasedev = &vdev->vbasedev;
    const char *id = DEVICE(pdev)->id;
    g_autofree char *devname = id ? g_strdup_printf("vfio-user-pci '%s'", id)
                                  : g_strdup("vfio-user-pci");

    if (!vfio_user_pci_check_properties(upci, errp)) {
        error_prepend(errp, "%s: ", devname);
        return;
    }

    /* vfio-pci-base's instance_init did vfio_device_init(). */
    vbasedev->name = vfio_user_pci_name(devname, upci->socket);
    vfio_user_device_attach_io(vbasedev, &upci->user);
    upci->user.secure_dma = upci->secure_dma;

    upci->user.proxy = vfio_user_connect(upci->socket, vbasedev->name,
                                         upci->timeout_ms, upci->poll_max_ns,
                                         &DEVICE(pdev)->mem_reentrancy_guard,
                                         errp);
    if (!upci->user.proxy) {
        /* The error names the socket already */
        error_prepend(errp, "%s: ", devname);
        error_append_hint(errp, "Is the vfio-user server running, and "
                          "listening on that socket?\n");
        return;
    }
    vfio_user_set_death_notifier(upci->user.proxy,
                                 vfio_user_pci_server_died, upci);
    if (!vfio_user_negotiate(upci->user.proxy, errp)) {
        goto error;
    }

    if (!vfio_attach_device_by_iommu_type(TYPE_VFIO_IOMMU_USER,
                                          vbasedev->name, vbasedev,
                                          pci_device_iommu_address_space(pdev),
                                          errp)) {
        goto error;
    }
    if (!vfio_pci_populate_device(vdev, errp)) {
        goto error;
    }
    if (!vfio_user_pci_vet_config(upci, errp)) {
        error_append_hint(errp, "QEMU does not trust the server's "
                          "description of the device; docs/system/devices/"
                          "vfio-user.rst lists what it checks.\n");
        goto error;
    }
    /*
     * BAR writes may be posted: the server handles messages in order, so
     * a later read still sees them.  Config space writes never are.
     */
    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        vdev->bars[i].region.post_wr = upci->post_writes;
    }
    if (!vfio_pci_config_setup(vdev, errp)) {
        goto error;
    }
    if (!vfio_pci_interrupt_setup(vdev, errp) ||
        !vfio_user_pci_migration_setup(upci, errp)) {
        vfio_pci_realize_cleanup(vdev);
        goto error;
    }
    upci->user.realized = true;
    /*
     * vfio-user-reconnect can always give the device a new connection;
     * reconnect-ms makes it try by itself, which it can with a socket
     * path, not with an fd.
     */
    upci->reconnect = vfio_user_reconnect_new(
        upci->reconnect_ms && upci->socket->type == SOCKET_ADDRESS_TYPE_UNIX ?
        upci->socket : NULL,
        vbasedev->name, upci->reconnect_ms, upci->timeout_ms,
        upci->poll_max_ns, DEVICE(pdev), vfio_user_pci_reconnected, upci);
    return;

error:
    error_prepend(errp, "%s: ", vbasedev->name);
}

static void vfio_user_pci_exit(PCIDevice *pdev)
{
    VFIOPCIDevice *vdev = VFIO_PCI(pdev);
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(pdev);

    /*
     * The connection lives until finalize; a death from now on must not
     * reach the interrupts and BARs that vfio_pci_device_exit() frees.
     */
    vfio_user_set_death_notifier(upci->user.proxy, NULL, NULL);
    vfio_user_reconnect_free(upci->reconnect);
    upci->reconnect = NULL;
    vfio_pci_device_exit(vdev);
    vfio_migration_exit(&vdev->vbasedev);
}

static void vfio_user_pci_finalize(Object *obj)
{
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(obj);
    VFIODevice *vbasedev = &upci->parent_obj.vbasedev;

    /* The base class's finalize has put the device: unmapped, detached. */
    vfio_user_container_detach(vbasedev);
    vfio_user_disconnect(upci->user.proxy);
    upci->user.proxy = NULL;
    vfio_user_device_free_state(&upci->user);
    g_free(upci->user.config_vet);
    upci->user.config_vet = NULL;
    migrate_del_blocker(&upci->migration_blocker);
    qapi_free_SocketAddress(upci->socket);
}

static void vfio_user_pci_reset(DeviceState *dev)
{
    VFIOPCIDevice *vdev = VFIO_PCI(dev);
    VFIODevice *vbasedev = &vdev->vbasedev;
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(dev);

    if (!upci->user.proxy) {
        return;
    }
    /*
     * A failed device has nobody to ask for a reset, but hw/vfio's side
     * (interrupts back to INTx) is reset all the same, so that what a
     * reconnect restores is the state after the reset.
     */
    vfio_pci_pre_reset(vdev);
    if (vbasedev->reset_works && !vfio_user_is_dead(upci->user.proxy) &&
        vbasedev->io_ops->device_reset(vbasedev)) {
        warn_report("vfio-user: %s: device reset failed", vbasedev->name);
    }
    vfio_pci_post_reset(vdev);
}

void qmp_vfio_user_reconnect(const char *id, const char *fdname,
                             Error **errp)
{
    Object *obj = object_resolve_path_type(id, TYPE_VFIO_USER_PCI, NULL);
    VFIOUserPCIDevice *upci;
    QIOChannelSocket *sioc;
    bool ok;
    int fd;

    if (!obj || !DEVICE(obj)->realized) {
        error_setg(errp, "'%s' is not a vfio-user-pci device", id);
        return;
    }
    upci = VFIO_USER_PCI(obj);
    fd = monitor_fd_param(monitor_cur(), fdname, errp);
    if (fd < 0) {
        return;
    }
    sioc = qio_channel_socket_new_fd(fd, errp);
    if (!sioc) {
        close(fd);
        return;
    }
    ok = vfio_user_reconnect_with(upci->reconnect, sioc, errp);
    object_unref(OBJECT(sioc));
    if (!ok) {
        error_prepend(errp, "%s: ", upci->parent_obj.vbasedev.name);
    }
}

static void vfio_user_pci_get_socket(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(obj);

    visit_type_SocketAddress(v, name, &upci->socket, errp);
}

static void vfio_user_pci_set_socket(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(obj);
    g_autofree GenericAlternate *alt = NULL;
    SocketAddress *addr = NULL;
    char *path = NULL;

    if (DEVICE(obj)->realized) {
        error_setg(errp, "cannot change the socket of a realized device");
        return;
    }
    /*
     * A path, as people write it on the command line (socket=PATH), or
     * a SocketAddress object (JSON, and socket.type=... via
     * vfio_user_pci_socket_from_flat()).
     */
    if (!visit_start_alternate(v, name, &alt, sizeof(*alt), errp)) {
        return;
    }
    if (alt->type == QTYPE_QSTRING) {
        if (visit_type_str(v, name, &path, errp)) {
            addr = g_new0(SocketAddress, 1);
            addr->type = SOCKET_ADDRESS_TYPE_UNIX;
            addr->u.q_unix.path = path;
        }
    } else if (alt->type == QTYPE_QDICT) {
        visit_type_SocketAddress(v, name, &addr, errp);
    } else {
        error_setg(errp, "'%s' must be a socket path or a SocketAddress "
                   "object", name);
    }
    visit_end_alternate(v, (void **)&alt);
    if (!addr) {
        return;
    }
    if (addr->type != SOCKET_ADDRESS_TYPE_UNIX &&
        addr->type != SOCKET_ADDRESS_TYPE_FD) {
        error_setg(errp, "'%s' must be a UNIX socket (type=unix) or a "
                   "connected socket fd (type=fd)", name);
        qapi_free_SocketAddress(addr);
        return;
    }
    qapi_free_SocketAddress(upci->socket);
    upci->socket = addr;
}

static bool vfio_user_pci_get_connected(Object *obj, Error **errp)
{
    VFIOUserPCIDevice *upci = VFIO_USER_PCI(obj);

    return upci->user.proxy && !vfio_user_is_dead(upci->user.proxy);
}

static const Property vfio_user_pci_properties[] = {
    DEFINE_PROP_STRING("socket.type", VFIOUserPCIDevice, flat_type),
    DEFINE_PROP_STRING("socket.path", VFIOUserPCIDevice, flat_path),
    DEFINE_PROP_STRING("socket.str", VFIOUserPCIDevice, flat_fd),
    DEFINE_PROP_UINT32("x-msg-timeout", VFIOUserPCIDevice, timeout_ms,
                       VFIO_USER_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT32("x-poll-max-ns", VFIOUserPCIDevice, poll_max_ns,
                       VFIO_USER_DEFAULT_POLL_MAX_NS),
    DEFINE_PROP_UINT32("reconnect-ms", VFIOUserPCIDevice, reconnect_ms, 0),
    /*
     * Off by default: libvfio-user servers (SPDK, QEMU's own) read the
     * next message as the reply to their DMA_READ/WRITE, so a request
     * pipelined behind a posted write that triggers DMA by message
     * breaks their stream, although the spec allows it.
     */
    DEFINE_PROP_BOOL("x-post-writes", VFIOUserPCIDevice, post_writes, false),
    DEFINE_PROP_BOOL("secure-dma", VFIOUserPCIDevice, secure_dma, false),
    DEFINE_PROP_ON_OFF_AUTO("enable-migration", VFIOUserPCIDevice,
                            parent_obj.vbasedev.enable_migration,
                            ON_OFF_AUTO_AUTO),
};

static void vfio_user_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pdc = PCI_DEVICE_CLASS(klass);

    device_class_set_legacy_reset(dc, vfio_user_pci_reset);
    device_class_set_props(dc, vfio_user_pci_properties);
    object_class_property_add(klass, "socket", "str or SocketAddress",
                              vfio_user_pci_get_socket,
                              vfio_user_pci_set_socket, NULL, NULL);
    object_class_property_set_description(klass, "socket",
        "the vfio-user server's UNIX socket (socket=PATH, or "
        "socket.type=unix,socket.path=PATH) or a connected socket "
        "(socket.type=fd,socket.str=FD)");
    object_class_property_add_bool(klass, "connected",
                                   vfio_user_pci_get_connected, NULL);
    object_class_property_set_description(klass, "connected",
        "whether the device is connected to its server (read-only)");
    object_class_property_set_description(klass, "reconnect-ms",
        "after losing the server, try to reconnect every this many ms, "
        "backing off while it fails, and restore the device (0: never)");
    object_class_property_set_description(klass, "secure-dma",
        "never give the server a guest memory fd: it must ask for every "
        "access with DMA_READ/DMA_WRITE, which the client checks");
    object_class_property_set_description(klass, "enable-migration",
        "migrate the device where the server can (auto: where it can "
        "and the device's DMA can be tracked; on: where it can, "
        "treating all memory as written when DMA cannot be tracked)");
    object_class_property_set_description(klass, "x-msg-timeout",
        "how long to wait for a reply from the server, in ms");
    object_class_property_set_description(klass, "x-poll-max-ns",
        "how long a thread waiting for a reply may busy-poll the socket "
        "before it sleeps, in ns (the window adapts up to this; 0: never "
        "poll; at most 1 ms)");
    object_class_property_set_description(klass, "x-post-writes",
        "send BAR writes without waiting for their reply (only for "
        "servers that accept requests while they wait for a DMA reply)");
    dc->desc = "vfio-user PCI device (emulated by another process)";
    pdc->realize = vfio_user_pci_realize;
    pdc->exit = vfio_user_pci_exit;
}

static const TypeInfo vfio_user_pci_info = {
    .name = TYPE_VFIO_USER_PCI,
    .parent = TYPE_VFIO_PCI_BASE,
    .instance_size = sizeof(VFIOUserPCIDevice),
    .instance_finalize = vfio_user_pci_finalize,
    .class_init = vfio_user_pci_class_init,
};

static void vfio_user_pci_register_types(void)
{
    type_register_static(&vfio_user_pci_info);
}

type_init(vfio_user_pci_register_types)
