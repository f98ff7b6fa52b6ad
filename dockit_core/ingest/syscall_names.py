"""The names of the x86-64 system calls that ltrace 0.7.3 prints by number (`SYS_334(...)` is rseq).

ltrace's own table stops before the system calls added to Linux after 2015 (getrandom is 318, statx
332, rseq 334, clone3 435, close_range 436...): it prints them as `SYS_<number>`. These are the numbers
of Linux's x86-64 system call table (asm/unistd_64.h) from 300 on, where ltrace's names end.
A log from another architecture keeps its numbers: the .ini or the log does not say the architecture,
and these numbers mean other calls there.
"""

from __future__ import annotations

X86_64_LATE: dict[int, str] = {
    300: "fanotify_init",
    301: "fanotify_mark",
    302: "prlimit64",
    303: "name_to_handle_at",
    304: "open_by_handle_at",
    305: "clock_adjtime",
    306: "syncfs",
    307: "sendmmsg",
    308: "setns",
    309: "getcpu",
    310: "process_vm_readv",
    311: "process_vm_writev",
    312: "kcmp",
    313: "finit_module",
    314: "sched_setattr",
    315: "sched_getattr",
    316: "renameat2",
    317: "seccomp",
    318: "getrandom",
    319: "memfd_create",
    320: "kexec_file_load",
    321: "bpf",
    322: "execveat",
    323: "userfaultfd",
    324: "membarrier",
    325: "mlock2",
    326: "copy_file_range",
    327: "preadv2",
    328: "pwritev2",
    329: "pkey_mprotect",
    330: "pkey_alloc",
    331: "pkey_free",
    332: "statx",
    333: "io_pgetevents",
    334: "rseq",
    424: "pidfd_send_signal",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
    428: "open_tree",
    429: "move_mount",
    430: "fsopen",
    431: "fsconfig",
    432: "fsmount",
    433: "fspick",
    434: "pidfd_open",
    435: "clone3",
    436: "close_range",
    437: "openat2",
    438: "pidfd_getfd",
    439: "faccessat2",
    440: "process_madvise",
    441: "epoll_pwait2",
    442: "mount_setattr",
    443: "quotactl_fd",
    444: "landlock_create_ruleset",
    445: "landlock_add_rule",
    446: "landlock_restrict_self",
    447: "memfd_secret",
    448: "process_mrelease",
    449: "futex_waitv",
    450: "set_mempolicy_home_node",
}


def syscall_name(name: str) -> str:
    """`334` -> `rseq`; any other name as it is."""
    if name.isdigit() and len(name) <= 4:
        return X86_64_LATE.get(int(name), name)
    return name


X86_64_LATE_NUMBERS: dict[str, int] = {name: number for number, name in X86_64_LATE.items()}
