/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile servers at version negotiation: absurd versions and
 * capabilities, huge or malformed JSON, bad framing of the VERSION reply.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include "vfio-user-hostile.h"

typedef struct VersionCase {
    const char *name;
    uint16_t major;
    uint16_t minor;
    const char *json;           /* NULL: none */
    size_t json_len;            /* 0: strlen + 1 */
    const char *expect;         /* NULL: realize works */
} VersionCase;

static void test_version(const void *data)
{
    const VersionCase *vc = data;
    VFIOUserVersion v = { .major = vc->major, .minor = vc->minor };
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    if (vc->json) {
        g_byte_array_append(c.h.canned, (uint8_t *)vc->json,
                            vc->json_len ? vc->json_len
                                         : strlen(vc->json) + 1);
    }
    c.h.then_handle = !vc->expect;
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    if (vc->expect) {
        check_realize_fails(&c, vc->expect);
    } else {
        check_realize_works(&c);
    }
    ctx_stop(&c);
}

#define CAPS(x) "{\"capabilities\":{" x "}}"

static const VersionCase version_cases[] = {
    { "no-json", 0, 1, NULL, 0, NULL },
    { "older-minor", 0, 0, CAPS("\"max_msg_fds\":4"), 0, NULL },
    { "wrong-major", 1, 1, CAPS(""), 0, "server answered version 1.1" },
    { "newer-minor", 0, 2, CAPS(""), 0, "server answered version 0.2" },
    { "malformed-json", 0, 1, "{\"capabilities\":{\"max_msg_fds\":", 0,
      "bad VERSION reply" },
    { "json-not-object", 0, 1, "[1, 2, 3]", 0, "not a JSON object" },
    { "caps-not-object", 0, 1, "{\"capabilities\":7}", 0,
      "'capabilities' is not a JSON object" },
    { "json-not-terminated", 0, 1, CAPS(""), sizeof(CAPS("")) - 1,
      "not NUL-terminated" },
    { "max-msg-fds-0", 0, 1, CAPS("\"max_msg_fds\":0"), 0, "max_msg_fds" },
    { "max-msg-fds-negative", 0, 1, CAPS("\"max_msg_fds\":-1"), 0,
      "max_msg_fds" },
    { "max-msg-fds-string", 0, 1, CAPS("\"max_msg_fds\":\"8\""), 0,
      "max_msg_fds" },
    { "max-xfer-huge", 0, 1,
      CAPS("\"max_data_xfer_size\":1099511627776"), 0,
      "max_data_xfer_size" },
    { "max-xfer-0", 0, 1, CAPS("\"max_data_xfer_size\":0"), 0,
      "max_data_xfer_size" },
    { "pgsizes-without-4k", 0, 1, CAPS("\"pgsizes\":2097152"), 0,
      "pgsizes" },
    { "max-dma-maps-0", 0, 1, CAPS("\"max_dma_maps\":0"), 0,
      "max_dma_maps" },
    { "unknown-caps", 0, 1,
      CAPS("\"future\":{\"a\":[1,2,{\"b\":null}]},\"max_msg_fds\":2"), 0,
      NULL },
};

/* Huge JSON: more than the client takes, and deeply nested in less */
static void test_version_huge_json(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    g_autofree char *big = g_strnfill(256 * 1024, ' ');
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    big[0] = '{';
    big[256 * 1024 - 2] = '}';
    g_byte_array_append(c.h.canned, (uint8_t *)big, 256 * 1024);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_fails(&c, "VERSION reply of 262148 bytes");
    ctx_stop(&c);
}

static void test_version_deep_json(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    GString *json = g_string_new("{\"capabilities\":");
    TestCtx c = { 0 };

    for (int i = 0; i < 1500; i++) {
        g_string_append_c(json, '[');
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)json->str, json->len + 1);
    g_string_free(json, true);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_fails(&c, "bad VERSION reply");
    ctx_stop(&c);
}


static void test_frame_realize(const void *data)
{
    const FrameCase *fc = data;
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)CAPS(""), sizeof(CAPS("")));
    c.h.size = fc->size;
    c.h.cut = fc->cut;
    c.h.id_xor = fc->id_xor;
    c.h.flags = fc->flags;
    c.h.err = fc->err;
    hostile_arm(&c.h, fc->cmd, -1, fn_canned);
    check_realize_fails(&c, fc->expect);
    ctx_stop(&c);
}

static const FrameCase frame_cases[] = {
    { "version/truncated-header", VFIO_USER_VERSION, -1, 8, 0, 0, 0,
      "Connection timed out" },
    { "version/truncated-payload", VFIO_USER_VERSION, -1, 20, 0, 0, 0,
      "version negotiation failed" },
    { "version/size-below-header", VFIO_USER_VERSION, 8, 0, 0, 0, 0,
      "version negotiation failed" },
    { "version/size-huge", VFIO_USER_VERSION, 0xfffffff0, 0, 0, 0, 0,
      "version negotiation failed" },
    { "version/wrong-id", VFIO_USER_VERSION, -1, 0, 0x5a5a, 0, 0,
      "Connection timed out" },
    { "version/error-errno-0", VFIO_USER_VERSION, -1, 0, 0, VFIO_USER_ERROR,
      0, "version negotiation failed" },
    { "version/error-errno-negative", VFIO_USER_VERSION, -1, 0, 0,
      VFIO_USER_ERROR, (uint32_t)-EPERM, "version negotiation failed" },
    { "version/error-errno-huge", VFIO_USER_VERSION, -1, 0, 0,
      VFIO_USER_ERROR, 0x7fffffff, "version negotiation failed" },
    { "version/not-a-reply", VFIO_USER_VERSION, -1, 0, 0, 0xe, 0,
      "Connection timed out" },
};

static void test_version_disconnect(void)
{
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_disconnect);
    check_realize_fails(&c, "version negotiation failed");
    ctx_stop(&c);
}

/* fds nobody asked for, as many as a message can carry */
static void test_version_fds(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    int fds[VFIO_USER_MAX_MAX_FDS];
    TestCtx c = { 0 };
    unsigned before;

    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(fds[i], >=, 0);
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    before = vu_fixture_qemu_fds(&c.f);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)CAPS(""), sizeof(CAPS("")));
    c.h.fds = fds;
    c.h.nfds = ARRAY_SIZE(fds);
    c.h.then_handle = true;
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_works(&c);
    /* The device holds a few fds of its own, not hundreds of ours. */
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), <, before + 32);
    ctx_stop(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
}

void hostile_add_version_tests(void)
{
    ADD_CASES("/vfio-user-hostile/version", version_cases, test_version);
    qtest_add_func("/vfio-user-hostile/version/huge-json",
                   test_version_huge_json);
    qtest_add_func("/vfio-user-hostile/version/deep-json",
                   test_version_deep_json);
    qtest_add_func("/vfio-user-hostile/version/disconnect",
                   test_version_disconnect);
    qtest_add_func("/vfio-user-hostile/version/fds", test_version_fds);
    ADD_CASES("/vfio-user-hostile", frame_cases, test_frame_realize);
}
