"""One table per kind of constant: Kafka error codes
(csrc/wire/kafka_errors.def), API keys (csrc/wire/proto_api.h, generated)
and the versions pykafka_c implements (csrc/wire/api_support.def).

The tables reach Python unchanged, the Python layer derives its names from
them, and no source writes one of their numbers again (the checker in
tests/constants_check.py, tested here on snippets too)."""

import os
import re
import sys

import pytest

from pykafka_c import _constants, _core
from pykafka_c import exceptions as exc
from pykafka_c.broker import SUPPORTED_VERSIONS, ApiKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import constants_check as cc  # noqa: E402

pytestmark = pytest.mark.unit

ROOT = cc.ROOT


# ------------------------------------------------------------ the tables

def test_kafka_errors_rows():
    rows = _core.kafka_errors()
    codes = [r[0] for r in rows]
    assert codes == list(range(-1, len(rows) - 1))   # ascending, no gaps
    assert codes[-1] >= 129                          # Kafka 4.x
    for code, name, retriable, refresh in rows:
        assert re.match(r"^[A-Z][A-Z0-9_]*$", name)
        assert type(retriable) is bool and type(refresh) is bool
        assert retriable or not refresh, name


@pytest.mark.parametrize("code,name,retriable,refresh", [
    (-1, "UNKNOWN_SERVER_ERROR", False, False),
    (0, "NONE", False, False),
    (1, "OFFSET_OUT_OF_RANGE", False, False),
    (2, "CORRUPT_MESSAGE", True, False),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", True, True),
    (5, "LEADER_NOT_AVAILABLE", True, True),
    (6, "NOT_LEADER_OR_FOLLOWER", True, True),
    (7, "REQUEST_TIMED_OUT", True, False),
    (9, "REPLICA_NOT_AVAILABLE", True, True),
    (13, "NETWORK_EXCEPTION", True, True),
    (16, "NOT_COORDINATOR", True, False),
    (35, "UNSUPPORTED_VERSION", False, False),
    (56, "KAFKA_STORAGE_ERROR", True, True),
    (58, "SASL_AUTHENTICATION_FAILED", False, False),
    (72, "LISTENER_NOT_FOUND", True, True),
    (74, "FENCED_LEADER_EPOCH", True, True),
    # "Clients need not refresh metadata before retrying" (Kafka's
    # UnknownLeaderEpochException is a RetriableException only).
    (75, "UNKNOWN_LEADER_EPOCH", True, False),
    (89, "THROTTLING_QUOTA_EXCEEDED", True, False),
    (100, "UNKNOWN_TOPIC_ID", True, True),
    (103, "INCONSISTENT_TOPIC_ID", True, True),
    (129, "REBOOTSTRAP_REQUIRED", False, False),
])
def test_kafka_errors_known_rows(code, name, retriable, refresh):
    assert _core.kafka_errors()[code + 1] == (code, name, retriable, refresh)
    assert _constants.KafkaError[name] == code
    assert (code in _constants.RETRIABLE) is retriable
    assert (code in _constants.REFRESH_METADATA) is refresh


def test_refresh_metadata_set_is_kafkas():
    # Kafka's InvalidMetadataException subclasses (clients/.../errors).
    assert _constants.REFRESH_METADATA == {3, 5, 6, 9, 13, 56, 72, 74, 80,
                                           83, 84, 100, 103}


def test_exceptions_built_from_the_table():
    rows = _core.kafka_errors()
    assert set(exc._CLASS_NAMES) == {r[0] for r in rows} - {0}
    for code, name, retriable, _refresh in rows:
        if code == 0:
            continue
        cls = exc.ERROR_CODES[code]
        assert cls.__name__ == exc._CLASS_NAMES[code]
        assert getattr(exc, cls.__name__) is cls
        assert cls.ERROR_CODE == code and type(cls.ERROR_CODE) is int
        assert cls.RETRIABLE is retriable
        assert exc.KAFKA_ERROR_NAMES[code] == name
        assert name in cls.__doc__
    assert 0 not in exc.KAFKA_ERROR_NAMES
    assert str(exc.error_for_code(6, "x")) == "NOT_LEADER_OR_FOLLOWER (6): x"


def test_api_keys_match_the_generated_enum():
    text = cc._read(os.path.join(ROOT, "csrc", "wire", "proto_api.h"))
    enum = {name: int(key) for name, key in
            re.findall(r"^\s*PKC_API_(\w+)\s*=\s*(\d+),", text, re.M)}
    attrs = {k: v for k, v in vars(ApiKey).items() if k.isupper()}
    assert attrs == enum
    assert (ApiKey.PRODUCE, ApiKey.FETCH, ApiKey.API_VERSIONS,
            ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE) == (0, 1, 18,
                                                                 17, 36)
    assert all(type(v) is int for v in attrs.values())


def test_supported_versions_cover_every_spec():
    table = _core.api_versions_table()
    rows = _core.supported_versions()
    assert [r[0] for r in rows] == sorted(table)
    assert SUPPORTED_VERSIONS == {k: (lo, hi) for k, _n, lo, hi in rows}
    for key, (lo, hi) in SUPPORTED_VERSIONS.items():
        name, spec_lo, spec_hi, _flex = table[key]
        assert spec_lo <= lo <= hi <= spec_hi, name


def test_supported_versions_unchanged():
    # The ranges broker.py held before the table (the engines' caps too).
    assert SUPPORTED_VERSIONS == {
        0: (3, 12), 1: (4, 12), 2: (1, 10), 3: (1, 12), 8: (2, 9),
        9: (1, 7), 10: (0, 3), 11: (0, 9), 12: (0, 4), 13: (0, 5),
        14: (0, 5), 15: (0, 5), 16: (0, 4), 17: (0, 1), 18: (0, 3),
        19: (2, 7), 20: (1, 5), 22: (0, 4), 24: (0, 3), 25: (0, 3),
        26: (0, 3), 28: (0, 3), 32: (1, 4), 36: (0, 2), 68: (0, 1)}


def test_fetcher_takes_its_range_from_the_table():
    lo, hi = SUPPORTED_VERSIONS[ApiKey.FETCH]
    with pytest.raises(ValueError, match=">= %d" % lo):
        _core.Fetcher(b"t", max_version=lo - 1)
    _core.Fetcher(b"t", max_version=hi)


@pytest.mark.cprogram
def test_c_predicates_agree_with_the_table(tmp_path):
    """pkc_kafka_error_* and pkc_api_support_find, in plain C."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cbuild
    src = tmp_path / "kerr.c"
    src.write_text(r"""
#include <stdio.h>
#include "api_support.h"
#include "kafka_errors.h"

int main(void)
{
    for (int code = -3; code < 200; code++) {
        const char *n = pkc_kafka_error_name(code);
        printf("%d %s %d %d\n", code, n ? n : "-",
               pkc_kafka_error_retriable(code),
               pkc_kafka_error_refresh_metadata(code));
    }
    for (int key = 0; key < 100; key++) {
        const pkc_api_support *s = pkc_api_support_find(key);
        if (s != NULL)
            printf("api %d %s %d %d\n", key, s->name, s->min_version,
                   s->max_version);
    }
    printf("fetch %d %d produce %d %d zstd %d\n", PKC_VER_FETCH_MIN,
           PKC_VER_FETCH_MAX, PKC_VER_PRODUCE_MIN, PKC_VER_PRODUCE_MAX,
           PKC_VER_PRODUCE_ZSTD_MIN);
    return PKC_KERR_NOT_LEADER_OR_FOLLOWER == 6 &&
           PKC_KERR_SASL_AUTHENTICATION_FAILED == 58 &&
           PKC_API_SASL_HANDSHAKE == 17 ? 0 : 1;
}
""")
    cc_ = cbuild.compiler()
    exe = tmp_path / "kerr"
    import subprocess
    res = subprocess.run(
        [cc_] + cbuild.WARNINGS + ["-Icsrc/wire", str(src),
                                   "csrc/wire/kafka_errors.c",
                                   "csrc/wire/api_support.c", "-o",
                                   str(exe)],
        cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = cbuild.run(str(exe)).splitlines()
    rows = {r[0]: r for r in _core.kafka_errors()}
    for line in out[:203]:
        code, name, retriable, refresh = line.split()
        code = int(code)
        if code in rows:
            assert (name, retriable == "1", refresh == "1") == rows[code][1:]
        else:
            assert (name, retriable, refresh) == ("-", "0", "0")
    apis = [line.split()[1:] for line in out if line.startswith("api ")]
    assert [(int(k), n, int(lo), int(hi)) for k, n, lo, hi in apis] == \
        list(_core.supported_versions())
    assert out[-1] == "fetch 4 12 produce 3 12 zstd 7"


# ----------------------------------------------------- no bare numbers

def test_no_bare_error_codes_or_api_keys():
    found = cc.check_tree()
    assert not found, "Kafka error codes / API keys written as numbers " \
        "(name them: PKC_KERR_* / PKC_API_* in C, pykafka_c._constants in " \
        "Python):\n" + "\n".join(
            "%s:%d: [%s] %d: %s" % f for f in found)


def test_checker_scans_the_sources():
    files = cc.source_files()
    for f in ("csrc/wire/fetchloop.c", "csrc/wire/sendloop.c",
              "csrc/py/proto.c", "pykafka_c/simpleconsumer.py",
              "pykafka_c/cli/kafka_tools.py", "pykafka_c/protocol/base.py"):
        assert f in files
    assert "csrc/wire/kafka_errors.def" not in files
    assert not any(f.startswith("pykafka_c/test/") for f in files)


@pytest.fixture(scope="module")
def tables():
    return cc.Tables()


def rules(found):
    return sorted((f.rule, f.number) for f in found)


C_BAD = [
    ("if (pr->error_code == 10 || pr->error_code == 18)",
     [("compare", 10), ("compare", 18)]),
    ("if (46 == v.top_error) x();", [("compare", 46)]),
    ("if (code != 75) x();", [("compare", 75)]),
    ("if (v->key == 1) x();", [("compare", 1)]),
    ("if (api_key == 18) return 0;", [("compare", 18)]),
    ("switch (code) {\ncase 3:\ncase 100:\n    return 1;\n}",
     [("case", 3), ("case", 100)]),
    ("switch (x) {\ncase 6: /* NOT_LEADER_OR_FOLLOWER */\n"
     "    return 1;\n}", [("named", 6)]),
    ("set_result(&r, PKC_SL_KAFKA, 35, PKC_ERR_UNSUPPORTED, \"x\");",
     [("argument", 35)]),
    ("set_result(&r, PKC_SL_KAFKA, (int16_t)76, 0, \"x\");",
     [("argument", 76)]),
    ("fl_post(fl, p, PKC_FL_EV_KAFKA, 1, \"x\");", [("argument", 1)]),
    ("return pkc_raise_kafka_error(st, 58, \"x\");", [("argument", 58)]),
    ("api = pkc_proto_api_find(0);", [("argument", 0)]),
    ("rc = pkc_proto_decode(&r, PKC_PROTO_RESPONSE, 18, 0, &v, &e);",
     [("argument", 18)]),
    ("rc = pkc_conn_send_request(&b->conn, 18, 0, 0, 1, \"\", 0, 0, 0);",
     [("argument", 18)]),
    ("#define FL_API_FETCH 1", [("copy", 1)]),
    ("#define FL_API_VERSIONS 18", [("copy", 18)]),
    ("#define PKC_API_KEY_API_VERSIONS 18", [("copy", 18)]),
    ("enum { ERR_LEADER_NOT_AVAILABLE = 5, };", [("copy", 5)]),
    ("static const int16_t leader_codes[] = {3, 5, 6};",
     [("copy", 3), ("copy", 5), ("copy", 6)]),
    ("ev.code = 5;", [("assign", 5)]),
    ("/* UNSUPPORTED_VERSION */\nif (x == 35)", [("named", 35)]),
]

C_GOOD = [
    "if (rc == 0 && err == 0) x();",
    "if (error_code != 0) x();",
    "if (codec == 3) x();",           # a compression codec, not a code
    "if (n == 3 || len == 100) x();",
    "case 3: break;",                 # not in a switch on a code
    "switch (kind) {\ncase 3:\n    break;\n}",
    "switch (code) {\ncase PKC_KERR_NONE:\n    break;\n}",
    "set_result(&r, PKC_SL_DECODE, 0, rc, \"x\");",
    "req_fail(sl, q, &r, r.kind != PKC_SL_KAFKA, 1);",
    "if (code == PKC_KERR_MESSAGE_TOO_LARGE) x();",
    "api = pkc_proto_api_find(PKC_API_FETCH);",
    "#define FL_TICK_MS 1000",
    "#define PKC_SL_IDEMPOTENT_MAX_IN_FLIGHT 5",
    "int err = 0;",
    "/* error 3 means UNKNOWN_TOPIC_OR_PARTITION */ x = 3 * y;",
    "const char *s = \"code == 3\";",
    "// if (code == 3)\n",
    "if (key == 200) x();",           # not an API key
]


PY_BAD = [
    ("if err == 3:\n    pass", [("compare", 3)]),
    ("if 12 != part.error_code:\n    pass", [("compare", 12)]),
    ("ok = part['error_code'] not in (0, 5)", [("compare", 5)]),
    ("x = resp.get('error_code', 0) in {14, 15}",
     [("compare", 14), ("compare", 15)]),
    ("if kind == K and code == 1:\n    pass", [("compare", 1)]),
    ("if api_key == 18:\n    pass", [("compare", 18)]),
    ("_LEADER_CODES = frozenset([3, 5])", [("copy", 3), ("copy", 5)]),
    ("RETRIABLE_OFFSET_ERRORS = frozenset((7, 78))",
     [("copy", 7), ("copy", 78)]),
    ("_COORDINATOR_RETRY = {14, 15}", [("copy", 14), ("copy", 15)]),
    ("_REQUEST_TIMED_OUT = 7", [("copy", 7)]),
    ("_API_INIT_PRODUCER_ID = 22", [("copy", 22)]),
    ("class R:\n    API_KEY = 3", [("copy", 3)]),
    ("raise error_for_code(23, 'x')", [("argument", 23)]),
    ("raise _kafka_error(35, 'x')", [("argument", 35)]),
    ("cls = ERROR_CODES[6]", [("argument", 6)]),
    ("f(pid, code=1)", [("argument", 1)]),
    ("resp = broker.request(22, fields)", [("argument", 22)]),
    ("b = _core.encode_request(18, 0, {})", [("argument", 18)]),
    ("lo, hi = SUPPORTED_VERSIONS[1]", [("argument", 1)]),
    ("err = t['error_code'] if t else 3", [("assign", 3)]),
    ("# UNSUPPORTED_VERSION in the v0 layout\n"
     "if int.from_bytes(raw[:2], 'big') == 35:\n    pass", [("named", 35)]),
]

PY_GOOD = [
    "if err == 0:\n    pass",
    "if part['error_code'] != 0:\n    pass",
    "if err == KafkaError.UNKNOWN_TOPIC_OR_PARTITION:\n    pass",
    "if code in _LEADER_CODES:\n    pass",
    "if isolation_level not in (0, 1):\n    pass",
    "if proc.returncode == 1:\n    pass",
    "if codec == 2:\n    pass",
    "MAX_RETRIES = 3",
    "_CODECS = (0, 1, 2, 3, 4)",       # compression codecs, not errors
    "API_KEY = -1",                    # no API has key -1
    "x = version_tuple < (0, 10, 1)",
    "raise error_for_code(err, 'x')",
    "n = y * 3  # UNKNOWN_TOPIC_OR_PARTITION is handled above",
    "s = 'err == 3'",
    "time.sleep(0.2 * (attempt + 1))",
    "offset = part['offset'] - 1",
]


CHECKERS = {"c": cc.check_c, "py": cc.check_python}


@pytest.mark.parametrize("lang,snippet,expected",
                         [("c",) + case for case in C_BAD] +
                         [("py",) + case for case in PY_BAD])
def test_checker_flags(tables, lang, snippet, expected):
    assert rules(CHECKERS[lang](snippet, tables)) == sorted(expected)


@pytest.mark.parametrize("lang,snippet",
                         [("c", case) for case in C_GOOD] +
                         [("py", case) for case in PY_GOOD])
def test_checker_passes(tables, lang, snippet):
    assert CHECKERS[lang](snippet, tables) == []


def test_checker_skips_the_python_table(tables):
    text = "_CLASS_NAMES = {3: 'UnknownTopicOrPartition'}\n" \
           "_LEADER_CODES = (3, 5)\n"
    assert rules(cc.check_python(text, tables,
                                 skip_names=["_CLASS_NAMES",
                                             "_LEADER_CODES"])) == []
