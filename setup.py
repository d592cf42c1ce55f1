"""Build script for pykafka_c and its C extension ``pykafka_c._core``.

Environment switches (read at build time):

* ``PKC_SANITIZE=1``  build with AddressSanitizer + UndefinedBehaviorSanitizer,
  ``-O1 -g``; run the tests with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``
  and ``PYTHONMALLOC=malloc`` (see ``scripts/sanitize-tests.sh``).
* ``PKC_TSAN=1``      build with ThreadSanitizer, ``-O1 -g``; run the tests with
  ``LD_PRELOAD=$(gcc -print-file-name=libtsan.so)`` (see
  ``scripts/tsan-tests.sh``).  Not together with ``PKC_SANITIZE``.
* ``PKC_DEBUG=1``     ``-O0 -g -UNDEBUG``.
* ``PKC_WERROR=1``    warnings are errors (CI sets it).
* ``PKC_NO_SNAPPY`` / ``PKC_NO_LZ4`` / ``PKC_NO_ZSTD`` = 1: build without that
  codec even when its library is installed (to test the "codec missing" error).
* ``PKC_NO_OPENSSL=1``  build without TLS and SCRAM even when OpenSSL is
  installed (to test the "TLS missing" error).
* ``PKC_WITH=snappy,lz4,zstd,openssl``  link exactly the optional libraries
  named, without looking for their headers (wheel builds,
  ``scripts/build-wheels.sh``: a missing header then fails the build instead
  of leaving that codec out of a wheel).  Overrides the ``PKC_NO_*`` switches.

Optional libraries are linked when their headers are found: libsnappy
(``snappy-c.h``), liblz4 (``lz4frame.h``), libzstd (``zstd.h``), and the
system's OpenSSL (``openssl/ssl.h``: libssl and libcrypto, for TLS and the
SCRAM SASL mechanisms).  zlib is required.
"""

import glob
import os
import sysconfig

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def _have_header(header):
    dirs = ["/usr/include", "/usr/local/include"]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs.append(os.path.join("/usr/include", multiarch))
    extra = os.environ.get("CPATH", "") + ":" + os.environ.get("C_INCLUDE_PATH", "")
    dirs.extend(d for d in extra.split(":") if d)
    return any(os.path.exists(os.path.join(d, header)) for d in dirs)


def _sources():
    srcs = sorted(glob.glob(os.path.join("csrc", "wire", "*.c")))
    srcs += sorted(glob.glob(os.path.join("csrc", "py", "*.c")))
    return srcs


def _depends():
    # Headers and the X-macro tables (*.def) they include.
    return sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True)
                  + glob.glob(os.path.join("csrc", "**", "*.def"),
                              recursive=True))


def _extension():
    define_macros = []
    libraries = ["z"]
    extra_compile_args = [
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Wstrict-prototypes",
        "-Wshadow",
        "-Wno-missing-field-initializers",
        "-D_GNU_SOURCE",
    ]
    extra_link_args = []
    codecs = [
        ("snappy", "snappy-c.h", "snappy", "PKC_HAVE_SNAPPY", "PKC_NO_SNAPPY"),
        ("lz4", "lz4frame.h", "lz4", "PKC_HAVE_LZ4", "PKC_NO_LZ4"),
        ("zstd", "zstd.h", "zstd", "PKC_HAVE_ZSTD", "PKC_NO_ZSTD"),
        ("openssl", "openssl/ssl.h", "ssl crypto", "PKC_HAVE_OPENSSL",
         "PKC_NO_OPENSSL"),
    ]
    wanted = None
    if os.environ.get("PKC_WITH", "").strip():
        wanted = {w.strip() for w in os.environ["PKC_WITH"].split(",")
                  if w.strip()}
        unknown = wanted - {c[0] for c in codecs}
        if unknown:
            raise SystemExit("PKC_WITH: unknown %s (known: %s)" % (
                ", ".join(sorted(unknown)),
                ", ".join(c[0] for c in codecs)))
    for name, header, libs, macro, off in codecs:
        if wanted is not None:
            if name not in wanted:
                continue
        elif _flag(off) or not _have_header(header):
            continue
        define_macros.append((macro, "1"))
        libraries.extend(libs.split())
    if _flag("PKC_WERROR"):
        extra_compile_args.append("-Werror")
    if _flag("PKC_SANITIZE") and _flag("PKC_TSAN"):
        raise SystemExit("PKC_SANITIZE and PKC_TSAN cannot be combined: "
                         "AddressSanitizer and ThreadSanitizer exclude "
                         "each other")
    if _flag("PKC_TSAN"):
        extra_compile_args += ["-O1", "-g", "-fno-omit-frame-pointer",
                               "-fsanitize=thread"]
        extra_link_args += ["-fsanitize=thread"]
        define_macros.append(("PKC_TSAN", "1"))
    elif _flag("PKC_SANITIZE"):
        extra_compile_args += ["-O1", "-g", "-fno-omit-frame-pointer",
                               "-fsanitize=address,undefined",
                               "-fno-sanitize-recover=undefined"]
        extra_link_args += ["-fsanitize=address,undefined"]
        define_macros.append(("PKC_SANITIZE", "1"))
    elif _flag("PKC_DEBUG"):
        extra_compile_args += ["-O0", "-g", "-UNDEBUG"]
    else:
        extra_compile_args += ["-O2"]
    return Extension(
        "pykafka_c._core",
        sources=_sources(),
        depends=_depends(),
        include_dirs=[os.path.join("csrc", "wire"), os.path.join("csrc", "py")],
        define_macros=define_macros,
        libraries=libraries + ["pthread"],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
    )


setup(ext_modules=[_extension()])
