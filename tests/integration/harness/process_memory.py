"""Searching a live process's memory (root reads /proc/PID/mem): the proof
that a secret is, or is not, in a process."""


def writable_mappings(pid):
    """Each writable mapping's bytes (heap, stacks, data: where secrets
    live). Mappings over 1 GiB are reservations (ASan's shadow memory under
    ci/sanitize.sh), not data."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "rw" not in fields[1][:2] or len(fields) > 5 and fields[5].startswith("[v") or hi - lo > 1 << 30:
                continue
            try:
                mem.seek(lo)
                yield mem.read(hi - lo)
            except (OSError, ValueError):
                continue


def found_in_memory(pid, needles):
    """The names of `needles` ({name: bytes}) that a process's writable
    mappings contain."""
    found = set()
    for data in writable_mappings(pid):
        for name, value in needles.items():
            if name not in found and value in data:
                found.add(name)
    return found


def count_in_memory(pid, needle):
    """How many times `needle` is in a process's writable mappings."""
    return sum(data.count(needle) for data in writable_mappings(pid))


def memory_holds(pid, needle):
    """Whether a process's writable mappings contain `needle`."""
    return bool(found_in_memory(pid, {"needle": needle}))
