#!/usr/bin/env python3
"""Generate csrc/wire/proto_gen.h and proto_api.h from Kafka's message
JSON specs.

Usage: gen_proto.py [--specs DIR] [--out FILE] [--api-out FILE]

Reads every ``*Request.json`` / ``*Response.json`` pair and the
``RequestHeader.json`` / ``ResponseHeader.json`` specs in DIR (default:
csrc/gen/message next to this script), and writes the static tables that
the walker in csrc/wire/proto.c uses (default output:
csrc/wire/proto_gen.h) and the ApiKey enum, ``PKC_API_<NAME>`` for every
API (default output: proto_api.h next to the tables).  The enum has a
header of its own because proto_gen.h defines static tables and is
included only by proto.c, while every file that names an API includes the
enum.  Standard library only; the output is deterministic (APIs in ApiKey
order, structs depth-first in field order).

The specs are copied unchanged from the kafka-clients jar named in
csrc/gen/message/SOURCE (``common/message/*.json``); they are JSON with
``//`` line comments, which are stripped here.

Supported spec features: commonStructs, inline structs (and references to
them by name), arrays of primitives and of structs, nullableVersions
(strings, bytes, records, arrays, structs), taggedVersions/tag,
field-level flexibleVersions, ignorable, default (strings or JSON values;
decimal or 0x-hex integers), and the types bool, int8, int16, uint16,
int32, uint32, int64, float64, uuid, string, bytes, records.
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SPECS = os.path.join(HERE, "message")
DEFAULT_OUT = os.path.join(ROOT, "csrc", "wire", "proto_gen.h")
API_HEADER = "proto_api.h"

PV_MAX = 127
MAX_DEPTH = 16

PRIMITIVES = {
    "bool": "PKC_PT_BOOL",
    "int8": "PKC_PT_INT8",
    "int16": "PKC_PT_INT16",
    "uint16": "PKC_PT_UINT16",
    "int32": "PKC_PT_INT32",
    "uint32": "PKC_PT_UINT32",
    "int64": "PKC_PT_INT64",
    "float64": "PKC_PT_FLOAT64",
    "uuid": "PKC_PT_UUID",
    "string": "PKC_PT_STRING",
    "bytes": "PKC_PT_BYTES",
    "records": "PKC_PT_RECORDS",
}
INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}


class SpecError(Exception):
    pass


def strip_comments(text):
    """Remove // comments (outside string literals) from JSON text."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_spec(path):
    with open(path, encoding="utf-8") as fp:
        return json.loads(strip_comments(fp.read()))


def snake(name):
    """CamelCase -> snake_case: ErrorCode -> error_code, ISRNodes ->
    isr_nodes, timeoutMs -> timeout_ms, Enable2Pc -> enable_2pc,
    V3AndBelowTopics -> v3_and_below_topics (a version tag keeps its
    digit)."""
    s = re.sub(r"([A-Z][0-9]+)([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([a-z])([0-9])", r"\1_\2", s)
    return s.lower()


def parse_versions(text, what):
    """'3+' -> (3, PV_MAX); '2-5' -> (2, 5); '4' -> (4, 4); 'none' ->
    (0, -1); None -> None."""
    if text is None:
        return None
    text = str(text).strip()
    if text == "none":
        return (0, -1)
    m = re.fullmatch(r"(\d+)\+", text)
    if m:
        return (int(m.group(1)), PV_MAX)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise SpecError("%s: bad version range %r" % (what, text))
        return (lo, hi)
    m = re.fullmatch(r"\d+", text)
    if m:
        return (int(text), int(text))
    raise SpecError("%s: bad version range %r" % (what, text))


def c_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
    out.append('"')
    return "".join(out)


class Field:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Struct:
    def __init__(self, name, origin):
        self.name = name
        self.origin = origin
        self.fields = []
        self.index = None


class MessageBuilder:
    """Turns one message spec into Struct objects, appended to `structs`."""

    def __init__(self, spec, path, structs):
        self.spec = spec
        self.path = path
        self.structs = structs
        self.common = {c["name"]: c for c in spec.get("commonStructs", [])}
        self.built = {}  # struct type name -> Struct (commons and inline)

    def build(self):
        top = Struct(self.spec["name"], self.spec["name"])
        self._build_struct(top, self.spec["fields"], 1)
        return top

    def _build_struct(self, st, fields_json, depth):
        if depth > MAX_DEPTH:
            raise SpecError("%s: %s nests deeper than %d"
                            % (self.path, st.origin, MAX_DEPTH))
        st.index = len(self.structs)
        self.structs.append(st)
        seen = set()
        nested = []
        for fj in fields_json:
            f = self._field(st, fj)
            if f.name in seen:
                raise SpecError("%s: duplicate field %s in %s"
                                % (self.path, f.name, st.name))
            seen.add(f.name)
            st.fields.append(f)
            if f.struct_type is not None:
                nested.append((f, fj))
        tags = [f.tag for f in st.fields if f.tag is not None]
        if len(tags) != len(set(tags)):
            raise SpecError("%s: duplicate tag in %s" % (self.path, st.name))
        if len(st.fields) > 64:
            raise SpecError("%s: more than 64 fields in %s"
                            % (self.path, st.name))
        for f, fj in nested:
            f.sub = self._resolve(f, fj, st, depth)

    def _resolve(self, f, fj, parent, depth):
        tname = f.struct_type
        if "fields" in fj:
            if tname in self.built or tname in self.common:
                raise SpecError("%s: struct %s defined twice"
                                % (self.path, tname))
            st = Struct(tname, "%s.%s" % (parent.origin, fj["name"]))
            self.built[tname] = st
            self._build_struct(st, fj["fields"], depth + 1)
            return st.index
        if tname in self.built:
            return self.built[tname].index
        if tname in self.common:
            st = Struct(tname, "%s/%s" % (self.spec["name"], tname))
            self.built[tname] = st
            self._build_struct(st, self.common[tname]["fields"], depth + 1)
            return st.index
        raise SpecError("%s: unknown struct type %s for field %s"
                        % (self.path, tname, fj["name"]))

    def _field(self, st, fj):
        where = "%s: %s.%s" % (self.path, st.name, fj.get("name"))
        name = fj["name"]
        ftype = fj["type"]
        is_array = ftype.startswith("[]")
        base = ftype[2:] if is_array else ftype
        versions = parse_versions(fj.get("versions"), where)
        if versions is None:
            raise SpecError("%s: no versions" % where)
        nullable = parse_versions(fj.get("nullableVersions"), where) \
            or (0, -1)
        tagged = parse_versions(fj.get("taggedVersions"), where) or (0, -1)
        flex = parse_versions(fj.get("flexibleVersions"), where) \
            or (0, PV_MAX)
        tag = fj.get("tag")
        if (tag is None) != (fj.get("taggedVersions") is None):
            raise SpecError("%s: tag and taggedVersions go together" % where)
        if tag is not None and not (0 <= int(tag) < 32768):
            raise SpecError("%s: tag out of range" % where)
        if base in PRIMITIVES:
            ctype = PRIMITIVES[base]
            struct_type = None
            if base in ("records",) and is_array:
                raise SpecError("%s: array of records" % where)
            nullable_ok = is_array or base in ("string", "bytes", "records")
        else:
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", base):
                raise SpecError("%s: unknown type %r" % (where, ftype))
            ctype = "PKC_PT_STRUCT"
            struct_type = base
            nullable_ok = True
        if nullable[0] <= nullable[1] and not nullable_ok:
            raise SpecError("%s: %s cannot be nullable" % (where, ftype))
        flags = []
        if is_array:
            flags.append("PKC_PF_ARRAY")
        if fj.get("ignorable", False):
            flags.append("PKC_PF_IGNORABLE")
        def_int, def_float, def_str, def_null = 0, 0.0, None, False
        d = fj.get("default")
        if d is not None:
            ds = d if isinstance(d, str) else json.dumps(d)
            if ds == "null":
                if nullable[0] > nullable[1]:
                    raise SpecError("%s: default null but not nullable"
                                    % where)
                def_null = True
            elif is_array or struct_type is not None:
                raise SpecError("%s: unsupported default %r" % (where, d))
            elif base == "bool":
                if ds not in ("true", "false"):
                    raise SpecError("%s: bad bool default %r" % (where, d))
                def_int = 1 if ds == "true" else 0
            elif base in INT_RANGES:
                try:
                    def_int = int(ds, 0)
                except ValueError:
                    raise SpecError("%s: bad int default %r" % (where, d))
                lo, hi = INT_RANGES[base]
                if not lo <= def_int <= hi:
                    raise SpecError("%s: default out of range" % where)
            elif base == "float64":
                def_float = float(ds)
            elif base == "string":
                def_str = ds
            elif base in ("bytes", "records", "uuid"):
                if ds != "":
                    raise SpecError("%s: unsupported default %r"
                                    % (where, d))
            else:
                raise SpecError("%s: unsupported default %r" % (where, d))
        if def_null:
            flags.append("PKC_PF_DEFAULT_NULL")
        return Field(name=snake(name), kafka_name=name, ctype=ctype,
                     flags=flags, versions=versions, nullable=nullable,
                     tagged=tagged, flex=flex,
                     tag=int(tag) if tag is not None else None,
                     struct_type=struct_type, sub=-1, def_int=def_int,
                     def_float=def_float, def_str=def_str)


class Api:
    pass


def collect(spec_dir):
    """Load the specs; return (apis, structs, headers, source_note)."""
    files = sorted(os.listdir(spec_dir))
    requests, responses = {}, {}
    headers = {}
    for fn in files:
        if not fn.endswith(".json"):
            continue
        path = os.path.join(spec_dir, fn)
        spec = load_spec(path)
        kind = spec.get("type")
        if kind == "header":
            headers[spec["name"]] = (fn, spec)
        elif kind == "request":
            requests[spec["apiKey"]] = (fn, spec)
        elif kind == "response":
            responses[spec["apiKey"]] = (fn, spec)
        else:
            raise SpecError("%s: unknown message type %r" % (fn, kind))
    if set(requests) != set(responses):
        raise SpecError("request and response specs do not pair up: %r"
                        % sorted(set(requests) ^ set(responses)))
    for hname in ("RequestHeader", "ResponseHeader"):
        if hname not in headers:
            raise SpecError("missing %s.json" % hname)
    structs = []
    apis = []
    for key in sorted(requests):
        rfn, req = requests[key]
        sfn, resp = responses[key]
        api = Api()
        api.key = key
        api.name = re.sub(r"Request$", "", req["name"])
        if resp["name"] != api.name + "Response":
            raise SpecError("%s: response name %s does not match %s"
                            % (sfn, resp["name"], req["name"]))
        api.valid = parse_versions(req["validVersions"], rfn)
        if parse_versions(resp["validVersions"], sfn) != api.valid:
            raise SpecError("%s: validVersions differ from the request"
                            % sfn)
        flex = parse_versions(req["flexibleVersions"], rfn)
        if parse_versions(resp["flexibleVersions"], sfn) != flex:
            raise SpecError("%s: flexibleVersions differ from the request"
                            % sfn)
        if flex[0] <= flex[1] and flex[1] != PV_MAX:
            raise SpecError("%s: flexibleVersions must be open-ended" % rfn)
        api.flexible_from = flex[0] if flex[0] <= flex[1] else -1
        api.unstable = bool(req.get("latestVersionUnstable", False))
        api.request = MessageBuilder(req, rfn, structs).build().index
        api.response = MessageBuilder(resp, sfn, structs).build().index
        apis.append(api)
    hdrs = {}
    for hname in ("RequestHeader", "ResponseHeader"):
        fn, spec = headers[hname]
        flex = parse_versions(spec["flexibleVersions"], fn)
        hdrs[hname] = (MessageBuilder(spec, fn, structs).build().index,
                       flex[0], parse_versions(spec["validVersions"], fn))
    source = ""
    src_path = os.path.join(spec_dir, "SOURCE")
    if os.path.exists(src_path):
        with open(src_path, encoding="utf-8") as fp:
            source = fp.read().strip().splitlines()[0]
    return apis, structs, hdrs, source


def banner(w, name, source, about):
    """The head of a generated header: "generated, do not edit", the specs'
    source, the lines of `about`, and #pragma once."""
    w("/*")
    w(" * %s - GENERATED by csrc/gen/gen_proto.py from the JSON" % name)
    w(" * specs in csrc/gen/message - do not edit; regenerate with")
    w(" *     python3 csrc/gen/gen_proto.py")
    if source:
        w(" * Specs: %s." % source.split(",")[0].replace("/*", "/ *"))
    w(" *")
    for line in about:
        w((" * " + line).rstrip())
    w(" */")
    w("#pragma once")


def render(apis, structs, hdrs, source):
    out = []
    w = out.append
    banner(w, "proto_gen.h", source, [
        "Apache Kafka's message specs are licensed under the Apache",
        "License, Version 2.0 (see the header of each JSON file).",
        "",
        "Included only by proto.c.  Field row columns: name, type, flags,",
        "versions lo/hi, nullable lo/hi, tagged lo/hi, flexible lo/hi,",
        "tag, struct index, int default, float default, string default."])
    w("")
    w('#include "proto.h"')
    w("")
    nfields = sum(len(s.fields) for s in structs)
    if nfields >= 65535 or len(structs) >= 32767:
        raise SpecError("tables too large")
    w("#define PKC_PROTO_N_APIS %d" % len(apis))
    w("#define PKC_PROTO_N_STRUCTS %d" % len(structs))
    w("#define PKC_PROTO_N_FIELDS %d" % nfields)
    w("#define PKC_PROTO_REQUEST_HEADER %d" % hdrs["RequestHeader"][0])
    w("#define PKC_PROTO_REQUEST_HEADER_FLEXIBLE_FROM %d"
      % hdrs["RequestHeader"][1])
    w("#define PKC_PROTO_RESPONSE_HEADER %d" % hdrs["ResponseHeader"][0])
    w("#define PKC_PROTO_RESPONSE_HEADER_FLEXIBLE_FROM %d"
      % hdrs["ResponseHeader"][1])
    w("")
    w("static const pkc_proto_field pkc_proto_fields[PKC_PROTO_N_FIELDS] "
      "= {")
    first = 0
    for st in structs:
        st.first = first
        w("    /* %d: %s (%s) */" % (st.index, st.name, st.origin))
        for f in st.fields:
            flags = " | ".join(f.flags) if f.flags else "0"
            tag = f.tag if f.tag is not None else -1
            dstr = c_string(f.def_str) if f.def_str is not None else "NULL"
            dfl = repr(float(f.def_float))
            if f.def_int == -(1 << 63):
                dint = "INT64_MIN"
            else:
                dint = "INT64_C(%d)" % f.def_int if abs(f.def_int) > \
                    0x7FFFFFFF else str(f.def_int)
            w("    {%s, %s, %s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
              "%s, %s, %s}," % (
                  c_string(f.name), f.ctype, flags, f.versions[0],
                  f.versions[1], f.nullable[0], f.nullable[1], f.tagged[0],
                  f.tagged[1], f.flex[0], f.flex[1], tag, f.sub, dint, dfl,
                  dstr))
        first += len(st.fields)
    w("};")
    w("")
    w("static const pkc_proto_struct pkc_proto_structs[PKC_PROTO_N_STRUCTS] "
      "= {")
    for st in structs:
        w("    {%s, %d, %d}," % (c_string(st.name), st.first,
                                 len(st.fields)))
    w("};")
    w("")
    w("static const pkc_proto_api pkc_proto_apis[PKC_PROTO_N_APIS] = {")
    for a in apis:
        w("    {%d, %s, %d, %d, %d, %d, %d, %d}," % (
            a.key, c_string(a.name), a.valid[0], a.valid[1],
            a.flexible_from, 1 if a.unstable else 0, a.request, a.response))
    w("};")
    w("")
    return "\n".join(out)


def api_const(api):
    """The enum name of an API: PKC_API_ + its request name without
    "Request" in UPPER_SNAKE (ApiVersions -> PKC_API_API_VERSIONS)."""
    return "PKC_API_" + snake(api.name).upper()


def render_api_header(apis, source):
    out = []
    w = out.append
    banner(w, "proto_api.h", source, [
        "Kafka's ApiKey of every API pykafka_c has a spec for: the one",
        "place an API key is written as a number."])
    w("")
    w("typedef enum {")
    width = max(len(api_const(a)) for a in apis)
    for a in apis:
        w("    %-*s = %d," % (width, api_const(a), a.key))
    w("} pkc_api_key;")
    w("")
    return "\n".join(out)


def generate(spec_dir):
    return render(*collect(spec_dir))


def generate_all(spec_dir):
    """(proto_gen.h text, proto_api.h text)."""
    apis, structs, hdrs, source = collect(spec_dir)
    return (render(apis, structs, hdrs, source),
            render_api_header(apis, source))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default=DEFAULT_SPECS)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--api-out", default=None,
                    help="default: %s next to --out" % API_HEADER)
    args = ap.parse_args(argv)
    api_out = args.api_out or os.path.join(
        os.path.dirname(os.path.abspath(args.out)), API_HEADER)
    try:
        texts = generate_all(args.specs)
    except SpecError as exc:
        print("gen_proto: %s" % exc, file=sys.stderr)
        return 1
    for path, text in zip((args.out, api_out), texts):
        with open(path, "w", encoding="utf-8", newline="\n") as fp:
            fp.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
