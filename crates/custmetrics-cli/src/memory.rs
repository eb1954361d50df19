//! How the allocator (mimalloc) treats memory: set first in `main`, before any other thread.

/// `mi_option_purge_delay` and `mi_option_allow_thp` in mimalloc.h (v3, as vendored by
/// libmimalloc-sys 0.1.49, pinned by Cargo.lock); the crate names only some options.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// The bounded-memory mode (`--partitions`) trades speed for a lower peak.
///
/// mimalloc keeps freed memory for a while (1 s, 10 s for its arenas) to reuse it cheaply; in
/// that mode each transactions partition frees most of what it used, and holding it kept the
/// peak near that of one big load (10M rows, `retention --partitions 4`: 1.09 GiB, against
/// 0.58-0.61 GiB returning it at once; BENCHMARKS.md). The same as `MIMALLOC_PURGE_DELAY=0`,
/// for the process only. And no transparent huge pages: they are faster, but a partly used
/// 2 MiB page counts whole (+10% peak in that run), and the 100M-row report's peak was measured
/// under 4 GiB without them.
pub fn bound_memory() {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` stores an integer option and has no other precondition than not
    // racing with other threads, and no other thread exists yet (it runs first in `main`;
    // rayon's and polars' pools and the Ctrl-C thread start later).
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    no_huge_pages();
}

/// No transparent huge pages for this process, as `MIMALLOC_ALLOW_THP=0` does at start-up.
pub fn no_huge_pages() {
    // `allow_thp` is read each time mimalloc maps memory, so arenas mapped from now on are
    // not offered to huge pages.
    #[allow(unsafe_code)]
    // SAFETY: as in `bound_memory`: an integer option, set before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
    // The arena mapped before `main` (the arguments were parsed into memory already) was
    // offered to huge pages: the process's own switch turns them off for every later fault,
    // as mimalloc does at start-up when `MIMALLOC_ALLOW_THP=0`.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` only sets a flag of the process; its
    // failure (an old kernel) leaves huge pages on, which costs memory, not correctness.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Whether huge pages should be left off on this machine: a virtual machine whose balloon
/// device reports free memory to its host in blocks of a huge page (2 MiB) or less, and no
/// `MIMALLOC_ALLOW_THP` in the environment (which then decides, as mimalloc reads it).
///
/// The host discards what it is told is free, and the blocks it is told about are exactly
/// huge-page sized, so a fresh huge page is a fresh host allocation: on such a machine
/// (BENCHMARKS.md, twenty-fifth session) a 10M-row `summarize` made ~1,100 huge-page faults at
/// ~3.5 ms each, 4.9-5.2 s after the machine had been idle against 3.3 s without huge pages
/// (which were 3.3 s either way). Small pages come from memory the host still backs. Elsewhere
/// huge pages stay on: on a machine without free page reporting they halved the system time.
pub fn huge_pages_cost_more_here() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let read = |path: &std::path::Path| std::fs::read_to_string(path).ok();
        let devices = std::fs::read_dir("/sys/bus/virtio/devices")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| {
                Some((
                    read(&d.path().join("device"))?,
                    read(&d.path().join("features"))?,
                ))
            })
            .collect::<Vec<_>>();
        let order = read(std::path::Path::new(
            "/sys/module/page_reporting/parameters/page_reporting_order",
        ));
        reports_huge_pages_to_host(&devices, order.as_deref())
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Virtio's id of a memory balloon device, and its feature bit for free page reporting
/// (virtio 1.2, 5.5.3: `VIRTIO_BALLOON_F_REPORTING`).
const VIRTIO_ID_BALLOON: &str = "0x0005";
const VIRTIO_BALLOON_F_REPORTING: usize = 5;
/// The order of a 2 MiB huge page in 4 KiB pages, Linux's default reporting order on x86-64.
const HUGE_PAGE_ORDER: u32 = 9;

/// [`huge_pages_cost_more_here`] from what sysfs says: each virtio device's `device` id and
/// `features` (one character per feature bit, bit 0 first), and the kernel's
/// `page_reporting_order` (the smallest free block reported; absent, the default, a huge page).
fn reports_huge_pages_to_host(devices: &[(String, String)], reporting_order: Option<&str>) -> bool {
    let reporting = devices.iter().any(|(id, features)| {
        id.trim() == VIRTIO_ID_BALLOON
            && features.trim().as_bytes().get(VIRTIO_BALLOON_F_REPORTING) == Some(&b'1')
    });
    let order = reporting_order
        .and_then(|o| o.trim().parse::<u32>().ok())
        .unwrap_or(HUGE_PAGE_ORDER);
    reporting && order <= HUGE_PAGE_ORDER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, features: &str) -> (String, String) {
        (format!("{id}\n"), format!("{features}\n"))
    }

    #[test]
    fn a_balloon_reporting_free_huge_pages_turns_them_off() {
        // As read off the Firecracker machine of the twenty-fifth session: a balloon with
        // bit 5 set, a block device, order 9.
        let seen = [
            device("0x0005", "0110010100000000000000000000000010000000"),
            device("0x0002", "0010001001100100000000000000010010000000"),
        ];
        assert!(reports_huge_pages_to_host(&seen, Some("9\n")));
        // The kernel's default order when the parameter cannot be read.
        assert!(reports_huge_pages_to_host(&seen, None));
    }

    #[test]
    fn huge_pages_stay_on_without_reporting_or_with_larger_blocks() {
        let no_reporting = [device("0x0005", "0110000100000000")];
        assert!(!reports_huge_pages_to_host(&no_reporting, Some("9")));
        let not_a_balloon = [device("0x0002", "0110010100000000")];
        assert!(!reports_huge_pages_to_host(&not_a_balloon, Some("9")));
        assert!(!reports_huge_pages_to_host(&[], None));
        let reporting = [device("0x0005", "0110010100000000")];
        assert!(!reports_huge_pages_to_host(&reporting, Some("11")));
    }
}
