"""A tiny NFSv4 client for tests, run with python3 inside a practice host: libnfs through
ctypes, for what libnfs's command line tools cannot do (remove, rename, overwrite).

Usage: python3 nfs_probe.py SERVER EXPORT UID GID OP PATH [ARG]
OP: unlink PATH | rename PATH NEW | write PATH TEXT (truncate + write an existing or new file)
| read PATH | mkdir PATH. Written files get mode 0644 (libnfs would create them
0600; a client with umask 022 creates 0644). Prints "ok" or "error: ..." (exit 1).
"""

import ctypes
import sys

O_WRONLY, O_CREAT, O_TRUNC = 0o1, 0o100, 0o1000


def main(server: str, export: str, uid: str, gid: str, op: str, *args: str) -> int:
    lib = ctypes.CDLL("libnfs.so.13")
    lib.nfs_init_context.restype = ctypes.c_void_p
    lib.nfs_get_error.restype = ctypes.c_char_p
    nfs = ctypes.c_void_p(lib.nfs_init_context())
    lib.nfs_set_uid(nfs, int(uid))
    lib.nfs_set_gid(nfs, int(gid))
    lib.nfs_set_version(nfs, 4)

    def check(rc: int) -> None:
        if rc < 0:
            print("error:", (lib.nfs_get_error(nfs) or b"").decode())
            raise SystemExit(1)

    check(lib.nfs_mount(nfs, server.encode(), export.encode()))
    path = args[0].encode()
    if op == "unlink":
        check(lib.nfs_unlink(nfs, path))
    elif op == "rename":
        check(lib.nfs_rename(nfs, path, args[1].encode()))
    elif op == "mkdir":
        check(lib.nfs_mkdir(nfs, path))
    elif op in ("write", "read"):
        handle = ctypes.c_void_p()
        if op == "write":
            flags = O_WRONLY | O_CREAT | O_TRUNC
            check(lib.nfs_open2(nfs, path, flags, 0o644, ctypes.byref(handle)))
            data = args[1].encode()
            check(lib.nfs_write(nfs, handle, len(data), data))
            check(lib.nfs_close(nfs, handle))
            check(lib.nfs_chmod(nfs, path, 0o644))  # as a client with umask 022 creates it
            print("ok")
            return 0
        else:
            check(lib.nfs_open(nfs, path, 0, ctypes.byref(handle)))
            buf = ctypes.create_string_buffer(4096)
            count = lib.nfs_read(nfs, handle, 4096, buf)
            check(count)
            print(buf.raw[:count].decode(), end="")
        check(lib.nfs_close(nfs, handle))
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
