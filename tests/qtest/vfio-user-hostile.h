/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper the vfio-user-hostile-test files share: a hook that makes
 * the test server misbehave on demand (Hostile), the context of one case
 * (TestCtx: the fixture, the hook, the VFIO_USER_SERVER_LOST events),
 * and the checks every case ends with.  vfio-user-hostile-test.c says
 * what the cases prove; each vfio-user-hostile-<phase>.c holds the cases
 * of one path prefix and registers them.
 */

#ifndef TESTS_QTEST_VFIO_USER_HOSTILE_H
#define TESTS_QTEST_VFIO_USER_HOSTILE_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define SLOT            VU_FIXTURE_SLOT
#define DEVFN           VU_FIXTURE_DEVFN
#define RAM_MB          256
#define RAM_END         ((uint64_t)RAM_MB * 1024 * 1024)
/*
 * x-msg-timeout: short where a test waits for it to pass, long elsewhere,
 * so that a loaded machine does not time out a well-behaved exchange
 */
#define FAST_TIMEOUT_MS 1000
#define SAFE_TIMEOUT_MS 5000
#define WAIT_MS         5000
#define GUEST_BUF       0x200000    /* guest RAM the server may DMA to */
#define ALL_ONES        0xffffffffu

/* The hostile part of the server: a hook that misbehaves on demand */

typedef struct Hostile Hostile;
typedef VUTestHookAction (*HostileFn)(Hostile *h, VUTestServer *s,
                                      const VUTestMsg *msg, GByteArray *out);

struct Hostile {
    /* Set before arming, read by the server thread */
    uint16_t cmd;               /* command to misbehave on */
    int64_t index;              /* region/irq index (offset 8), -1: any */
    int skip;                   /* matching requests let through first */
    bool once;                  /* disarm after the first hit */
    HostileFn fn;

    /* Parameters of the canned reply (fn_canned) */
    GByteArray *canned;         /* payload */
    uint16_t id_xor;            /* id of the reply: request's ^ this */
    uint16_t reply_cmd;         /* 0: the request's command */
    uint32_t flags;             /* added to VFIO_USER_REPLY */
    uint32_t err;               /* error_reply field */
    int64_t size;               /* size field, -1: the right one */
    size_t cut;                 /* send only this many bytes, 0: all */
    const int *fds;             /* fds to attach */
    unsigned nfds;
    unsigned delay_ms;          /* for the fns that sleep */
    uint32_t value;             /* for the fns that answer reads */
    /*
     * fn_canned: send the canned reply first, then let the server handle
     * the request (its own reply comes second, a duplicate the client
     * must drop), so that the server's state follows
     */
    bool then_handle;

    int armed;                  /* atomic */
    int entered;                /* atomic: hook started misbehaving */
    int hits;                   /* atomic: hook done misbehaving */

    GMutex lock;
    GCond cond;
    bool released;              /* ends every sleep of the hook */
};

typedef struct TestCtx {
    VUFixture f;
    Hostile h;
    unsigned timeout_ms;        /* x-msg-timeout, 0: SAFE_TIMEOUT_MS */
    int lost;                   /* VFIO_USER_SERVER_LOST events seen */
    char *lost_reason;
} TestCtx;

/* Framing errors on the VERSION reply */
typedef struct FrameCase {
    const char *name;
    uint16_t cmd;
    int64_t size;               /* -1: right */
    size_t cut;
    uint16_t id_xor;
    uint32_t flags;
    uint32_t err;
    const char *expect;
} FrameCase;

/* Arm the hook on requests of @cmd (and region/irq @index, -1: any) */
void hostile_arm(Hostile *h, uint16_t cmd, int64_t index, HostileFn fn);
void hostile_disarm(Hostile *h);
/* End every sleep of the hook, now and later. */
void hostile_release(Hostile *h);
/* Sleep in the hook for @ms, or until released. */
void hostile_sleep(Hostile *h, unsigned ms);
bool hostile_wait_hits(Hostile *h, int n);
void assert_hits(Hostile *h, int n);

/* Messages a hook sends */
void put_hdr(GByteArray *out, uint16_t id, uint16_t cmd, uint32_t size,
             uint32_t flags, uint32_t err);
void put_reply(GByteArray *out, const VUTestMsg *msg, const void *p,
               size_t len);
void put_read_reply(GByteArray *out, const VUTestMsg *msg, uint32_t value);
void send_with_fds_from(Hostile *h, VUTestServer *s, GByteArray *out,
                        unsigned first);
void send_with_fds(Hostile *h, VUTestServer *s, GByteArray *out);

/* Misbehaviours more than one phase uses */
VUTestHookAction fn_canned(Hostile *h, VUTestServer *s,
                           const VUTestMsg *msg, GByteArray *out);
VUTestHookAction fn_disconnect(Hostile *h, VUTestServer *s,
                               const VUTestMsg *msg, GByteArray *out);
VUTestHookAction fn_sleep(Hostile *h, VUTestServer *s,
                          const VUTestMsg *msg, GByteArray *out);

/* Setting up and tearing down a case */
void ctx_server(TestCtx *c, VUTestServerConfig *cfg, bool reaccept);
void ctx_qemu(TestCtx *c);
void ctx_start(TestCtx *c, const char *dev_extra);
void ctx_stop(TestCtx *c);

/* What a case ends with */
void assert_alive(TestCtx *c);
void assert_works(TestCtx *c);
void wait_lost(TestCtx *c);
void assert_degraded(TestCtx *c);
void assert_unplugged(TestCtx *c);
void check_realize_fails(TestCtx *c, const char *expect);
void check_realize_works(TestCtx *c);

/* Guest RAM the server must not reach, and DMA it may do */
void guard_fill(TestCtx *c);
void guard_check(TestCtx *c);
void check_dma_works(TestCtx *c);
void dma_start(TestCtx *c);

/* Arm the hook once on REGION_READs of BAR0 */
void arm_read(TestCtx *c, HostileFn fn);

/* Register a case per element of @cases, named by its first member */
void add_data_tests(const char *prefix, const void *cases,
                    size_t n, size_t size, GTestDataFunc fn);
#define ADD_CASES(prefix, cases, fn) \
    add_data_tests(prefix, cases, ARRAY_SIZE(cases), sizeof(cases[0]), fn)

/* The cases of each path prefix, in vfio-user-hostile-<prefix>.c */
void hostile_add_version_tests(void);
void hostile_add_realize_tests(void);
void hostile_add_runtime_tests(void);
void hostile_add_unplug_tests(void);       /* reset/ and unplug/ */
void hostile_add_dma_tests(void);
void hostile_add_deadline_tests(void);

#endif /* TESTS_QTEST_VFIO_USER_HOSTILE_H */
