"""Find Kafka error codes and API keys written as bare numbers.

Each kind of constant has one table: error codes in
``csrc/wire/kafka_errors.def``, API keys in the generated
``csrc/wire/proto_api.h``, version ranges in ``csrc/wire/api_support.def``.
C names them ``PKC_KERR_<NAME>`` / ``PKC_API_<NAME>``, Python through
``pykafka_c._constants`` (or a class's ``ERROR_CODE``).  This module reads
the sources (``csrc/wire/*.[ch]``, ``csrc/py/*.[ch]``, ``pykafka_c/**/*.py``)
and reports the places that write one of those numbers again.

A number is only reported where the context says it is a Kafka error code
or API key, and only if the tables know that number as one (0, "no error",
may be written as 0; an API key may not).  The rules:

``compare``   an error-like name (``err``, ``error``, ``code``,
              ``error_code``, ``top_error``, ... also ``x["error_code"]``)
              or a key-like name (``api_key``, ``key``, ``API_KEY``)
              compared with ``==`` / ``!=`` to a literal, or tested with
              ``in`` / ``not in`` against a literal tuple, list or set.
``case``      ``case N:`` in a C ``switch`` on an error-like or key-like
              expression.
``named``     a number next to its own Kafka name: a comparison, ``case``
              or ``return`` of N whose line or one of the four lines above
              carries Kafka's name for N (``case 3: /* UNKNOWN_TOPIC_OR_
              PARTITION */``; ``# UNSUPPORTED_VERSION (35)`` above an
              ``== 35``).
``copy``      a second table: a constant whose name is Kafka's name for
              the number it is bound to (``#define FL_API_FETCH 1``,
              ``_REQUEST_TIMED_OUT = 7``, ``API_KEY = 3``), or a tuple,
              list, set or C array of codes bound to a name that speaks of
              codes, errors or retries (``_LEADER_CODES = frozenset([3,
              5])``).
``assign``    a literal code stored in an error-like name (``err = 3;``,
              ``err = x if ... else 3``).
``argument``  a literal passed where a code or key is expected: the code
              of ``error_for_code`` / ``_kafka_error`` /
              ``pkc_raise_kafka_error``, ``ERROR_CODES[N]``, a ``code=`` /
              ``error_code=`` keyword; the code after an engine's result
              kind (``set_result(r, PKC_SL_KAFKA, 35, ...)``,
              ``fl_post(fl, p, PKC_FL_EV_KAFKA, 1, ...)``); the API key of
              the codec, connection and negotiation calls
              (``pkc_proto_api_find(1)``, ``encode_request(18, ...)``,
              ``SUPPORTED_VERSIONS[1]``).

Not scanned: the tables themselves, exceptions.py's ``_CLASS_NAMES`` (the
Python side's code -> class-name map), and ``pykafka_c/test/`` (the
harness's own Kafka client, independent of pykafka_c by design, like the
fake brokers and fixtures under ``tests/``).

Run ``python3 tests/constants_check.py`` to list the findings.
"""

import ast
import glob
import os
import re
import sys
from collections import namedtuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

Finding = namedtuple("Finding", "path line rule number text")

#: Files that are the tables (relative to ROOT).
TABLE_FILES = frozenset([
    "csrc/wire/kafka_errors.def", "csrc/wire/kafka_errors.h",
    "csrc/wire/kafka_errors.c", "csrc/wire/api_support.def",
    "csrc/wire/api_support.h", "csrc/wire/api_support.c",
    "csrc/wire/proto_api.h", "csrc/wire/proto_gen.h",
    "pykafka_c/_constants.py",
])
#: (file, name): assignments that are a table (skipped).
TABLE_ASSIGNMENTS = frozenset([("pykafka_c/exceptions.py", "_CLASS_NAMES")])
#: Directories not scanned (relative to ROOT).
SKIP_DIRS = ("pykafka_c/test/",)

ERR_IDENT = re.compile(
    r"(?i)^_*(?:[a-z0-9]+_)*(?:err|error|errors|errcode|error_code|code|"
    r"kafka_code|top_error|ec)$")
NOT_ERR_IDENT = re.compile(
    r"(?i)(?:returncode|exitcode|exit_code|status_code|codec|encode|"
    r"decode|errno|opcode)$")
KEY_IDENT = re.compile(r"(?i)^_*(?:api_key|apikey|key)$")
COLLECTION_WORDS = frozenset(["code", "codes", "err", "errs", "error",
                              "errors", "retriable", "retry", "retries"])

#: Python calls whose first positional argument is an error code.
PY_CODE_CALLS = frozenset(["error_for_code", "_kafka_error"])
#: Python subscripts indexed by an error code.
PY_CODE_SUBSCRIPTS = frozenset(["ERROR_CODES", "KAFKA_ERROR_NAMES"])
#: Python calls whose first positional argument is an API key.
PY_KEY_CALLS = frozenset([
    "request", "_request", "_send", "encode_request", "encode_response",
    "decode_request", "decode_response", "negotiate", "api_name",
    "is_flexible", "request_header_version", "response_header_version"])
#: Python subscripts indexed by an API key.
PY_KEY_SUBSCRIPTS = frozenset(["SUPPORTED_VERSIONS", "versions",
                               "api_versions", "_api_table"])
#: Lines above a number searched for its Kafka name ("named" rule).
NAMED_WINDOW = 4
#: Keyword arguments that take an error code.
PY_CODE_KEYWORDS = frozenset(["code", "error_code", "err"])


class Tables(object):
    """The numbers and names the checker looks for, read from the C
    tables' sources (so the checker needs no build)."""

    def __init__(self, root=ROOT):
        self.errors = {}    # code -> NAME
        text = _read(os.path.join(root, "csrc/wire/kafka_errors.def"))
        for m in re.finditer(r"^PKC_KAFKA_ERROR\((\w+),\s*(-?\d+),", text,
                             re.M):
            self.errors[int(m.group(2))] = m.group(1)
        self.apis = {}      # key -> NAME
        text = _read(os.path.join(root, "csrc/wire/proto_api.h"))
        for m in re.finditer(r"^\s*PKC_API_(\w+)\s*=\s*(\d+),", text, re.M):
            self.apis[int(m.group(2))] = m.group(1)
        assert self.errors and self.apis, "tables not found"
        self.error_names = {v: k for k, v in self.errors.items()}
        self.api_names = {v: k for k, v in self.apis.items()}

    def is_code(self, n):
        return n != 0 and n in self.errors

    def is_key(self, n):
        return n in self.apis


def _read(path):
    with open(path, encoding="utf-8") as fp:
        return fp.read()


def _collection_name(name):
    """Does a name speak of codes, errors or retries (_LEADER_CODES,
    RETRIABLE_OFFSET_ERRORS, _PID_RETRIABLE; not _CODECS)?"""
    return bool(COLLECTION_WORDS & set(name.lower().split("_")))


def _err_ident(name):
    return bool(ERR_IDENT.match(name)) and not NOT_ERR_IDENT.search(name)


def _key_ident(name):
    return bool(KEY_IDENT.match(name))


def _copy_of(tables, name, n):
    """Is `name` Kafka's name for `n` as an error code or API key, maybe
    behind a prefix (FL_API_FETCH, _REQUEST_TIMED_OUT, ERR_NONE)?"""
    upper = name.upper()
    if n in tables.apis and re.search(
            r"(?:^|_)(?:API_(?:KEY_)?)?%s$" % re.escape(tables.apis[n]),
            upper):
        return True
    if n in tables.errors and n != 0 and re.search(
            r"(?:^|_)%s$" % re.escape(tables.errors[n]), upper):
        return True
    return False


# ------------------------------------------------------------------ C

_C_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|'
                      r"'(?:\\.|[^'\\\n])*'", re.S)


def _c_blank(text):
    """Comments and string literals replaced by spaces (newlines kept), so
    offsets and line numbers stay those of the source."""
    return _C_TOKEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


_NUM = r"\(?\s*(?:\(\s*int(?:16|32)_t\s*\)\s*)?(-?\d+)\s*\)?"
_C_LVALUE = r"([A-Za-z_]\w*(?:\s*(?:->|\.)\s*[A-Za-z_]\w*)*)"
_C_CMP_L = re.compile(_C_LVALUE + r"\s*(?:==|!=)\s*" + _NUM + r"(?!\w)")
_C_CMP_R = re.compile(r"(?<![\w.>])(-?\d+)\s*(?:==|!=)\s*" + _C_LVALUE)
_C_KIND_ARG = re.compile(
    r"[(,]\s*PKC_(?:SL|FL_EV)_[A-Z_]+\s*,\s*" + _NUM + r"\s*[,)]")
_C_RAISE = re.compile(r"\bpkc_raise_kafka_error\s*\([^,()]*,\s*" + _NUM +
                      r"\s*[,)]")
_C_KEY_ARG = [
    re.compile(r"\b(?:pkc_proto_api_find|pkc_api_support_find|"
               r"pkc_proto_request_header_version|"
               r"pkc_proto_response_header_version|"
               r"pkc_response_header_version)\s*\(\s*" + _NUM + r"\s*[,)]"),
    re.compile(r"\bPKC_PROTO_(?:REQUEST|RESPONSE)\s*,\s*" + _NUM +
               r"\s*[,)]"),
    re.compile(r"\bpkc_conn_(?:send_request|request_begin)\s*\([^,()]*"
               r"(?:\([^()]*\))?[^,()]*,\s*" + _NUM + r"\s*[,)]"),
]
_C_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+" + _NUM +
                       r"[ \t]*$", re.M)
_C_ENUM_MEMBER = re.compile(r"\b([A-Z][A-Z0-9_]*)\s*=\s*" + _NUM +
                            r"\s*[,}]")
_C_ASSIGN = re.compile(_C_LVALUE + r"\s*=\s*" + _NUM + r"\s*;")
_C_ARRAY = re.compile(r"\b(\w+)\s*\[\s*\w*\s*\]\s*=\s*\{([^{}]*)\}")
_C_SWITCH = re.compile(r"\bswitch\s*\(")
_C_CASE = re.compile(r"\bcase\s+" + _NUM + r"\s*:")
_C_NAMED = re.compile(r"(?:==|!=|\bcase|\breturn)\s*" + _NUM + r"(?!\w)|"
                      r"(?<![\w.>])(-?\d+)\s*(?:==|!=)")


def _last_ident(lvalue):
    return re.split(r"\s*(?:->|\.)\s*", lvalue)[-1]


def _closing(text, i):
    """Index just past the bracket that closes the '(' or '{' at text[i]."""
    opening = text[i]
    closing = ")" if opening == "(" else "}"
    depth = 0
    for j in range(i, len(text)):
        if text[j] == opening:
            depth += 1
        elif text[j] == closing:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def check_c(text, tables, path="<c>"):
    """Findings in C source `text`."""
    code = _c_blank(text)
    lines = text.splitlines()
    found = []

    def line_of(pos):
        return code.count("\n", 0, pos) + 1

    def add(pos, rule, n):
        ln = line_of(pos)
        found.append(Finding(path, ln, rule, n, lines[ln - 1].strip()
                             if ln <= len(lines) else ""))

    for m in _C_CMP_L.finditer(code):
        ident, n = _last_ident(m.group(1)), int(m.group(2))
        if (_err_ident(ident) and tables.is_code(n)) or \
                (_key_ident(ident) and tables.is_key(n)):
            add(m.start(), "compare", n)
    for m in _C_CMP_R.finditer(code):
        n, ident = int(m.group(1)), _last_ident(m.group(2))
        if (_err_ident(ident) and tables.is_code(n)) or \
                (_key_ident(ident) and tables.is_key(n)):
            add(m.start(), "compare", n)

    # switch bodies: a case belongs to its innermost switch
    switches = []
    for m in _C_SWITCH.finditer(code):
        open_paren = m.end() - 1
        close = _closing(code, open_paren)
        brace = code.find("{", close)
        if brace < 0:
            continue
        switches.append((code[open_paren + 1:close - 1], brace,
                         _closing(code, brace)))
    for m in _C_CASE.finditer(code):
        inner = [s for s in switches if s[1] < m.start() < s[2]]
        if not inner:
            continue
        expr = max(inner, key=lambda s: s[1])[0]
        idents = re.findall(r"[A-Za-z_]\w*", expr)
        n = int(m.group(1))
        if idents and ((_err_ident(idents[-1]) and tables.is_code(n)) or
                       (_key_ident(idents[-1]) and tables.is_key(n))):
            add(m.start(), "case", n)

    for m in _C_KIND_ARG.finditer(code):
        if tables.is_code(int(m.group(1))):
            add(m.start(1), "argument", int(m.group(1)))
    for m in _C_RAISE.finditer(code):
        if tables.is_code(int(m.group(1))):
            add(m.start(1), "argument", int(m.group(1)))
    for rx in _C_KEY_ARG:
        for m in rx.finditer(code):
            if tables.is_key(int(m.group(1))):
                add(m.start(1), "argument", int(m.group(1)))

    for rx in (_C_DEFINE, _C_ENUM_MEMBER):
        for m in rx.finditer(code):
            if _copy_of(tables, m.group(1), int(m.group(2))):
                add(m.start(1), "copy", int(m.group(2)))
    for m in _C_ASSIGN.finditer(code):
        n = int(m.group(2))
        if _err_ident(_last_ident(m.group(1))) and tables.is_code(n):
            add(m.start(), "assign", n)
    for m in _C_ARRAY.finditer(code):
        if _collection_name(m.group(1)):
            for v in re.findall(r"(?<![\w.])-?\d+(?![\w.])", m.group(2)):
                if tables.is_code(int(v)):
                    add(m.start(), "copy", int(v))

    _named(text, code.splitlines(), _c_comments(text), _C_NAMED, tables,
           path, found)
    return _unique(found)


def _c_comments(text):
    """Per line, the comment text on that line."""
    out = [""] * (text.count("\n") + 1)
    for m in re.finditer(r"//[^\n]*|/\*.*?\*/", text, re.S):
        first = text.count("\n", 0, m.start())
        for k, part in enumerate(m.group(0).split("\n")):
            out[first + k] += " " + part
    return out


def _named(text, code_lines, comments, rx, tables, path, found):
    src_lines = text.splitlines()
    for i, line in enumerate(code_lines):
        for m in rx.finditer(line):
            num = m.group(1) if m.group(1) is not None else m.group(2)
            n = int(num)
            name = tables.errors.get(n) if tables.is_code(n) else None
            if name is None:
                continue
            near = " ".join(comments[max(0, i - NAMED_WINDOW):i + 1])
            if re.search(r"\b%s\b" % re.escape(name), near):
                found.append(Finding(path, i + 1, "named", n,
                                     src_lines[i].strip()))


def _unique(found):
    seen, out = set(), []
    for f in found:
        if (f.line, f.number) not in seen:
            seen.add((f.line, f.number))
            out.append(f)
    return sorted(out, key=lambda f: (f.line, f.number))


# ------------------------------------------------------------- Python

def _py_int(node):
    """The int value of a literal (``3``, ``-1``), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and \
            isinstance(node.operand, ast.Constant) and \
            type(node.operand.value) is int:
        return -node.operand.value
    return None


def _py_ints(node):
    """The int literals of a tuple/list/set literal, or of
    frozenset/set/tuple/list(<such a literal>); None if not one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in ("frozenset", "set", "tuple", "list") and \
            len(node.args) == 1:
        node = node.args[0]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for v in map(_py_int, node.elts) if v is not None]
    return None


def _py_name(node):
    """The last identifier of a name, attribute or string subscript
    (``err``, ``pr.error_code``, ``part["error_code"]``), else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        sl = node.slice
        if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
            return sl.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "get" and node.args and \
            isinstance(node.args[0], ast.Constant) and \
            isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def _func_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _func_name(node.func)
    return None


class _PyVisitor(ast.NodeVisitor):

    def __init__(self, tables, path, lines, skip_names):
        self.t = tables
        self.path = path
        self.lines = lines
        self.skip = skip_names
        self.found = []

    def add(self, node, rule, n):
        ln = node.lineno
        self.found.append(Finding(self.path, ln, rule, n,
                                  self.lines[ln - 1].strip()))

    def _kind_of(self, node):
        name = _py_name(node)
        if name is None:
            return None
        if _err_ident(name):
            return "code"
        if _key_ident(name):
            return "key"
        return None

    def _bad(self, kind, n):
        return (kind == "code" and self.t.is_code(n)) or \
            (kind == "key" and self.t.is_key(n))

    def visit_Compare(self, node):
        operands = [node.left] + node.comparators
        for op, a, b in zip(node.ops, operands, operands[1:]):
            if isinstance(op, (ast.Eq, ast.NotEq)):
                for x, y in ((a, b), (b, a)):
                    n, kind = _py_int(y), self._kind_of(x)
                    if n is not None and kind and self._bad(kind, n):
                        self.add(node, "compare", n)
            elif isinstance(op, (ast.In, ast.NotIn)):
                kind, values = self._kind_of(a), _py_ints(b)
                for n in values or ():
                    if kind and self._bad(kind, n):
                        self.add(node, "compare", n)
        self.generic_visit(node)

    def _assigned(self, node, targets, value):
        for t in targets:
            name = t.id if isinstance(t, ast.Name) else \
                t.attr if isinstance(t, ast.Attribute) else None
            if name is None:
                continue
            if name in self.skip:
                return True
            n = _py_int(value)
            if n is not None and (_copy_of(self.t, name, n) or
                                  (_key_ident(name) and self.t.is_key(n))):
                self.add(node, "copy", n)
            if _err_ident(name):
                branches = [value.body, value.orelse] \
                    if isinstance(value, ast.IfExp) else [value]
                for b in branches:
                    n = _py_int(b)
                    if n is not None and self.t.is_code(n):
                        self.add(node, "assign", n)
            values = _py_ints(value)
            if values and _collection_name(name):
                for v in values:
                    if self.t.is_code(v):
                        self.add(node, "copy", v)
        return False

    def visit_Assign(self, node):
        if not self._assigned(node, node.targets, node.value):
            self.generic_visit(node)

    def visit_AnnAssign(self, node):
        if node.value is None or \
                not self._assigned(node, [node.target], node.value):
            self.generic_visit(node)

    def visit_Call(self, node):
        fname = _func_name(node.func)
        if node.args:
            n = _py_int(node.args[0])
            if n is not None and ((fname in PY_CODE_CALLS and
                                   self.t.is_code(n)) or
                                  (fname in PY_KEY_CALLS and
                                   self.t.is_key(n))):
                self.add(node, "argument", n)
        for kw in node.keywords:
            n = _py_int(kw.value) if kw.arg in PY_CODE_KEYWORDS else None
            if n is not None and self.t.is_code(n):
                self.add(node, "argument", n)
        self.generic_visit(node)

    def visit_Subscript(self, node):
        n = _py_int(node.slice)
        base = _func_name(node.value)
        if n is not None and ((base in PY_CODE_SUBSCRIPTS and
                               self.t.is_code(n)) or
                              (base in PY_KEY_SUBSCRIPTS and
                               self.t.is_key(n))):
            self.add(node, "argument", n)
        self.generic_visit(node)


_PY_NAMED = re.compile(r"(?:==|!=|\breturn)\s*(-?\d+)(?!\w)|"
                       r"(?<![\w.])(-?\d+)\s*(?:==|!=)")


def _py_comments(text):
    import io
    import tokenize
    out = [""] * (text.count("\n") + 2)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0] - 1] += " " + tok.string
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _py_code_lines(text):
    """Lines with comments and strings blanked."""
    import io
    import tokenize
    lines = [list(line) for line in text.split("\n")]
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.COMMENT, tokenize.STRING):
                (r0, c0), (r1, c1) = tok.start, tok.end
                for r in range(r0, r1 + 1):
                    row = lines[r - 1]
                    a = c0 if r == r0 else 0
                    b = c1 if r == r1 else len(row)
                    row[a:b] = " " * (b - a)
    except (tokenize.TokenError, IndentationError):
        pass
    return ["".join(row) for row in lines]


def check_python(text, tables, path="<py>", skip_names=()):
    """Findings in Python source `text`."""
    tree = ast.parse(text)
    v = _PyVisitor(tables, path, text.splitlines(), frozenset(skip_names))
    v.visit(tree)
    _named(text, _py_code_lines(text), _py_comments(text), _PY_NAMED,
           tables, path, v.found)
    return _unique(v.found)


# ---------------------------------------------------------------- tree

def source_files(root=ROOT):
    pats = ["csrc/wire/*.c", "csrc/wire/*.h", "csrc/py/*.c", "csrc/py/*.h",
            "pykafka_c/**/*.py"]
    out = []
    for pat in pats:
        for p in glob.glob(os.path.join(root, pat), recursive=True):
            rel = os.path.relpath(p, root).replace(os.sep, "/")
            if rel in TABLE_FILES or rel.startswith(SKIP_DIRS):
                continue
            out.append(rel)
    return sorted(out)


def check_tree(root=ROOT):
    tables = Tables(root)
    found = []
    for rel in source_files(root):
        text = _read(os.path.join(root, rel))
        if rel.endswith(".py"):
            skip = [n for f, n in TABLE_ASSIGNMENTS if f == rel]
            found += check_python(text, tables, rel, skip)
        else:
            found += check_c(text, tables, rel)
    return found


def main():
    found = check_tree()
    for f in found:
        print("%s:%d: [%s] %d: %s" % (f.path, f.line, f.rule, f.number,
                                      f.text))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
