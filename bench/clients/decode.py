"""Decode only, no broker: a recorded Fetch v12 response (bench/data/)
decoded into pykafka_c Message objects, again and again until ``count``
messages were made, against C-level creation of the same number of bytes
objects of the same size (``bytes.split`` of the values joined by newlines:
one allocation and copy per object, no per-object Python bytecode).

Returns ns per message for: the whole response (``decode_response`` of
the body, then ``decode_records`` of the partition's records, as a Fetch
answer is handled; for a bytes body the records field is a read-only
memoryview of it, not a copy) and the records alone, plus the bytes
baseline.  The garbage collector stays enabled.  The
checksum of the values of one decoded response is compared with the one
stored with the recording before anything is timed.
"""

import gc
import time

from . import MASK


def run(spec, timer):
    from pykafka_c import _core
    from bench.payloads import Checksum
    from bench.record_fetch import load
    size = spec["size"]
    n_target = spec["count"]
    raw, meta = load(size)
    version = meta["api_version"]

    # Verify once, untimed: count and checksum of one decoded response.
    resp = _core.decode_response(1, version, raw)
    records = resp["responses"][0]["partitions"][0]["records"]
    msgs = _core.decode_records(records, 0, 0)
    c = Checksum()
    for m in msgs:
        c.add(m.value)
    if c.as_dict() != meta["checksum"]:
        raise RuntimeError("decoded %r, recording says %r" % (c.as_dict(), meta["checksum"]))
    per = len(msgs)
    loops = max(1, -(-n_target // per))
    n = loops * per
    del msgs

    decode_response = _core.decode_response
    decode_records = _core.decode_records

    def full():
        for _ in range(loops):
            r = decode_response(1, version, raw)
            out = decode_records(r["responses"][0]["partitions"][0]["records"], 0, 0)
            if len(out) != per:
                raise RuntimeError("decoded %d records, not %d" % (len(out), per))
        return out

    def records_only():
        for _ in range(loops):
            out = decode_records(records, 0, 0)
        return out

    joined = b"\n".join(m.value for m in _core.decode_records(records, 0, 0))
    sep = b"\n"

    def bytes_baseline():
        for _ in range(loops):
            out = joined.split(sep)
        return out

    def best_of(fn, reps):
        """Best (CPU time, wall time) of ``reps`` passes.  CPU time of this
        single-threaded loop is what the table uses: on a shared machine the
        wall time also counts the time other processes held the core."""
        best = None
        for _ in range(reps):
            w0 = time.perf_counter()
            c0 = time.process_time()
            fn()
            cpu = time.process_time() - c0
            wall = time.perf_counter() - w0
            if best is None or cpu < best[0]:
                best = (cpu, wall)
        return best

    reps = int(spec.get("reps", 3))
    full()                                   # warm-up: caches, allocator arenas
    timer.start()
    t_full = best_of(full, reps)
    timer.stop()
    t_rec = best_of(records_only, reps)
    t_bytes = best_of(bytes_baseline, reps)
    gc_enabled = gc.isenabled()
    return {"count": n, "bytes": n * size,
            "decode_cpu_s": t_full[0], "decode_wall_s": t_full[1],
            "ns_per_msg": t_full[0] / n * 1e9,
            "ns_per_msg_wall": t_full[1] / n * 1e9,
            "ns_per_msg_records_only": t_rec[0] / n * 1e9,
            "ns_per_bytes_object": t_bytes[0] / n * 1e9,
            "ns_per_bytes_object_wall": t_bytes[1] / n * 1e9,
            "msgs_per_response": per, "response_bytes": len(raw),
            "recording": {k: meta[k] for k in ("kafka_version", "producer", "recorded",
                                               "api_version", "records")},
            "method": "best CPU time of %d passes of %d responses; gc %s" % (
                reps, loops, "enabled" if gc_enabled else "disabled"),
            "checksum_of_one_response": meta["checksum"]["crcsum"] & MASK}
