"""The protocol table generator: the committed csrc/wire/proto_gen.h and
proto_api.h must be exactly what csrc/gen/gen_proto.py makes from
csrc/gen/message, and the
generator + walker must handle the spec features that the shipped specs
do not use (commonStructs, nullable structs, uint16/uint32/float64,
field-level flexibleVersions, hex defaults)."""

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "csrc", "gen", "gen_proto.py")
SPECS = os.path.join(ROOT, "csrc", "gen", "message")
COMMITTED = os.path.join(ROOT, "csrc", "wire", "proto_gen.h")
COMMITTED_API = os.path.join(ROOT, "csrc", "wire", "proto_api.h")
sys.path.insert(0, os.path.dirname(GEN))
import gen_proto  # noqa: E402

pytestmark = pytest.mark.unit


def read(path, n=-1):
    with open(path, encoding="utf-8") as fp:
        return fp.read(n)


def test_committed_tables_are_up_to_date(tmp_path):
    out = tmp_path / "proto_gen.h"
    subprocess.run([sys.executable, GEN, "--specs", SPECS, "--out",
                    str(out)], check=True)
    for new, committed in ((out, COMMITTED),
                           (tmp_path / "proto_api.h", COMMITTED_API)):
        if not filecmp.cmp(new, committed, shallow=False):
            import difflib
            diff = "".join(difflib.unified_diff(
                read(committed).splitlines(True), read(new).splitlines(True),
                "committed", "regenerated", n=1))
            pytest.fail("csrc/wire/%s is stale; run python3 "
                        "csrc/gen/gen_proto.py\n%s"
                        % (os.path.basename(committed), diff[:4000]))


def test_api_enum_names():
    text = read(COMMITTED_API)
    for name, key in (("PRODUCE", 0), ("FETCH", 1),
                      ("SASL_HANDSHAKE", 17), ("API_VERSIONS", 18),
                      ("INIT_PRODUCER_ID", 22), ("SASL_AUTHENTICATE", 36),
                      ("CONSUMER_GROUP_HEARTBEAT", 68)):
        # the names are padded to one column, the longest name's
        assert re.search(r"\n    PKC_API_%s *= %d,\n" % (name, key),
                         text), name


def test_output_is_deterministic():
    assert gen_proto.generate(SPECS) == gen_proto.generate(SPECS)


def test_banner_and_license_note():
    text = read(COMMITTED)
    assert "GENERATED" in text and "do not edit" in text
    assert "Apache" in text
    assert "GENERATED" in read(COMMITTED_API)


def test_specs_keep_their_license_headers():
    for fn in os.listdir(SPECS):
        if fn.endswith(".json"):
            head = read(os.path.join(SPECS, fn), 400)
            assert "Licensed to the Apache Software Foundation" in head, fn


@pytest.mark.parametrize("camel,snake", [
    ("ErrorCode", "error_code"), ("ApiKeys", "api_keys"),
    ("ISRNodes", "isr_nodes"), ("IsrNodes", "isr_nodes"),
    ("timeoutMs", "timeout_ms"), ("validateOnly", "validate_only"),
    ("Enable2Pc", "enable_2pc"), ("TopicId", "topic_id"),
    ("ThrottleTimeMs", "throttle_time_ms"), ("Records", "records"),
])
def test_snake_case(camel, snake):
    assert gen_proto.snake(camel) == snake


def test_comment_stripping_keeps_slashes_in_strings():
    text = '// head\n{"a": "x // y", // tail\n "b": "\\"//\\""}\n'
    assert json.loads(gen_proto.strip_comments(text)) == {
        "a": "x // y", "b": '"//"'}


@pytest.mark.parametrize("text,rng", [
    ("0+", (0, 127)), ("3-5", (3, 5)), ("4", (4, 4)), ("none", (0, -1)),
])
def test_parse_versions(text, rng):
    assert gen_proto.parse_versions(text, "t") == rng


# ---------------------------------------------- a synthetic spec, end to end

LICENSE = "// synthetic spec for tests; \"quoted\" // and nested\n"

REQUEST = {
    "apiKey": 900, "type": "request", "name": "PkcTypesRequest",
    "validVersions": "0-2", "flexibleVersions": "1+",
    "commonStructs": [{"name": "Pair", "versions": "0+", "fields": [
        {"name": "A", "type": "uint16", "versions": "0+",
         "default": "0xffff"},
        {"name": "B", "type": "uint32", "versions": "0+"}]}],
    "fields": [
        {"name": "Ratio", "type": "float64", "versions": "0+",
         "default": "1.5", "about": "a // not a comment"},
        {"name": "Pairs", "type": "[]Pair", "versions": "0+"},
        {"name": "Maybe", "type": "Pair", "versions": "0+",
         "nullableVersions": "0+", "default": "null"},
        {"name": "Raw", "type": "string", "versions": "1+",
         "flexibleVersions": "none"},
        {"name": "ISRNodes", "type": "[]int32", "versions": "2+",
         "tag": 5, "taggedVersions": "2+"},
    ],
}
RESPONSE = {
    "apiKey": 900, "type": "response", "name": "PkcTypesResponse",
    "validVersions": "0-2", "flexibleVersions": "1+",
    "fields": [{"name": "ErrorCode", "type": "int16", "versions": "0+"}],
}

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"

static int ev_begin(void *c, const pkc_proto_field *f, const pkc_proto_struct *s)
{ (void)c; printf("begin %s %s\n", f ? f->name : "-", s->name); return 0; }
static int ev_end(void *c, const pkc_proto_field *f, const pkc_proto_struct *s)
{ (void)c; printf("end %s %s\n", f ? f->name : "-", s->name); return 0; }
static int ev_barr(void *c, const pkc_proto_field *f, int32_t n)
{ (void)c; printf("array %s %d\n", f->name, (int)n); return 0; }
static int ev_earr(void *c, const pkc_proto_field *f)
{ (void)c; printf("endarray %s\n", f->name); return 0; }
static int ev_null(void *c, const pkc_proto_field *f)
{ (void)c; printf("null %s\n", f->name); return 0; }
static int ev_int(void *c, const pkc_proto_field *f, int64_t v)
{ (void)c; printf("int %s %lld\n", f->name, (long long)v); return 0; }
static int ev_float(void *c, const pkc_proto_field *f, double v)
{ (void)c; printf("float %s %g\n", f->name, v); return 0; }
static int ev_str(void *c, const pkc_proto_field *f, pkc_slice v)
{ (void)c; printf("string %s %.*s\n", f->name, (int)v.len, v.ptr); return 0; }

int main(int argc, char **argv)
{
    int version = atoi(argv[1]);
    const char *hex = argv[2];
    size_t n = strlen(hex) / 2;
    uint8_t *buf = malloc(n + 1);
    pkc_reader r;
    pkc_proto_error err;
    pkc_proto_visitor vis;
    pkc_writer w;

    (void)argc;
    for (size_t i = 0; i < n; i++) {
        unsigned b;
        sscanf(hex + 2 * i, "%2x", &b);
        buf[i] = (uint8_t)b;
    }
    memset(&vis, 0, sizeof(vis));
    vis.begin_struct = ev_begin; vis.end_struct = ev_end;
    vis.begin_array = ev_barr; vis.end_array = ev_earr;
    vis.on_null = ev_null; vis.on_int = ev_int; vis.on_float = ev_float;
    vis.on_string = ev_str;
    pkc_reader_init(&r, buf, n);
    if (pkc_proto_decode(&r, PKC_PROTO_REQUEST, 900, version, &vis, &err))
        printf("error %s at %zu: %s\n", pkc_status_str(err.status),
               err.offset, err.path);
    pkc_writer_init(&w, 0, 0);
    if (pkc_proto_encode(&w, PKC_PROTO_REQUEST, 900, version, NULL, &err))
        printf("encode error %d\n", err.status);
    printf("defaults ");
    for (size_t i = 0; i < w.len; i++)
        printf("%02x", w.buf[i]);
    printf("\n");
    pkc_writer_free(&w);
    free(buf);
    return 0;
}
"""


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    for hdr in ("RequestHeader.json", "ResponseHeader.json"):
        shutil.copy(os.path.join(SPECS, hdr), d / hdr)
    (d / "PkcTypesRequest.json").write_text(LICENSE + json.dumps(REQUEST))
    (d / "PkcTypesResponse.json").write_text(LICENSE + json.dumps(RESPONSE))
    gen = d / "gen.h"
    subprocess.run([sys.executable, GEN, "--specs", str(d), "--out",
                    str(gen)], check=True)
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc) is needed for this test"
    (d / "driver.c").write_text(DRIVER)
    exe = d / "driver"
    wire = os.path.join(ROOT, "csrc", "wire")
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1",
                    "-I", wire, '-DPKC_PROTO_GEN_FILE="%s"' % gen,
                    os.path.join(wire, "proto.c"),
                    os.path.join(wire, "buf.c"), str(d / "driver.c"),
                    "-o", str(exe)], check=True)
    return gen.read_text(), exe


def run(exe, version, hexdata):
    out = subprocess.run([str(exe), str(version), hexdata], check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()


def test_synthetic_rows(synthetic):
    text, _exe = synthetic
    # common struct resolved, uint16 hex default, nullable struct with a
    # null default, field-level flexibleVersions none, tagged array
    assert '{"a", PKC_PT_UINT16, 0, 0, 127, 0, -1, 0, -1, 0, 127, -1, -1, ' \
        '65535, 0.0, NULL}' in text
    assert '{"b", PKC_PT_UINT32, 0,' in text
    assert '{"ratio", PKC_PT_FLOAT64, 0, 0, 127, 0, -1, 0, -1, 0, 127, ' \
        '-1, -1, 0, 1.5, NULL}' in text
    assert '{"maybe", PKC_PT_STRUCT, PKC_PF_DEFAULT_NULL, 0, 127, 0, 127,' \
        in text
    assert '{"raw", PKC_PT_STRING, 0, 1, 127, 0, -1, 0, -1, 0, -1,' in text
    assert '{"isr_nodes", PKC_PT_INT32, PKC_PF_ARRAY, 2, 127, 0, -1, 2, ' \
        '127, 0, 127, 5,' in text
    assert '{900, "PkcTypes", 0, 2, 1, 0,' in text


def test_synthetic_api_enum(synthetic):
    _text, exe = synthetic
    api = (exe.parent / "proto_api.h").read_text()
    assert "    PKC_API_PKC_TYPES = 900,\n" in api


def test_synthetic_decode_v2(synthetic):
    _text, exe = synthetic
    data = ("4004000000000000"        # ratio 2.5
            "02" "fffe" "ffffffff" "00"   # pairs: 1 x Pair(65534, 2^32-1)
            "01" "0001" "00000002" "00"   # maybe: present Pair(1, 2)
            "0002" "6162"             # raw: classic string "ab"
            "01" "05" "09" "03" "00000007" "00000008")  # tag 5: [7, 8]
    assert run(exe, 2, data) == [
        "begin - PkcTypesRequest",
        "float ratio 2.5",
        "array pairs 1",
        "begin pairs Pair", "int a 65534", "int b 4294967295",
        "end pairs Pair",
        "endarray pairs",
        "begin maybe Pair", "int a 1", "int b 2", "end maybe Pair",
        "string raw ab",
        "array isr_nodes 2", "int isr_nodes 7", "int isr_nodes 8",
        "endarray isr_nodes",
        "end - PkcTypesRequest",
        # defaults: ratio 1.5, no pairs, null maybe, raw "" (classic),
        # no tagged fields
        "defaults 3ff8000000000000" "01" "ff" "0000" "00",
    ]


def test_synthetic_decode_v0_and_tag_default(synthetic):
    _text, exe = synthetic
    # v0 is not flexible: int32 array count, nullable struct marker -1
    out = run(exe, 0, "0000000000000000" "00000000" "ff")
    assert out == ["begin - PkcTypesRequest", "float ratio 0",
                   "array pairs 0", "endarray pairs", "null maybe",
                   "end - PkcTypesRequest",
                   "defaults 3ff8000000000000" "00000000" "ff"]
    # v2 without the tagged field: its default (empty array) is reported
    out = run(exe, 2, "0000000000000000" "01" "ff" "0000" "00")
    assert out[-4:-1] == ["array isr_nodes 0", "endarray isr_nodes",
                          "end - PkcTypesRequest"]


def test_synthetic_truncated_nested(synthetic):
    _text, exe = synthetic
    out = run(exe, 1, "4004000000000000" "01" "01" "0001" "0000")
    assert "error truncated at 12: maybe.b" in out
    # an array count larger than the bytes left could hold (7 per Pair)
    out = run(exe, 1, "4004000000000000" "03" "fffe" "ffffffff" "00")
    assert "error truncated at 9: pairs" in out


@pytest.mark.parametrize("field,message", [
    ({"name": "X", "type": "Nope", "versions": "0+"}, "unknown struct"),
    ({"name": "X", "type": "int32", "versions": "0+", "default": "null"},
     "not nullable"),
    ({"name": "X", "type": "int8", "versions": "0+", "default": "300"},
     "out of range"),
    ({"name": "X", "type": "int32", "versions": "0+",
      "nullableVersions": "0+"}, "cannot be nullable"),
    ({"name": "X", "type": "int32", "versions": "0+", "tag": 1},
     "go together"),
])
def test_generator_rejects_bad_specs(tmp_path, field, message):
    for hdr in ("RequestHeader.json", "ResponseHeader.json"):
        shutil.copy(os.path.join(SPECS, hdr), tmp_path / hdr)
    bad = dict(REQUEST, fields=[field])
    bad.pop("commonStructs")
    (tmp_path / "BadRequest.json").write_text(json.dumps(bad))
    (tmp_path / "BadResponse.json").write_text(json.dumps(RESPONSE))
    with pytest.raises(gen_proto.SpecError, match=message):
        gen_proto.generate(str(tmp_path))
