//! The standard Prometheus process metrics and `quai_build_info`, read from
//! `/proc` at scrape time (what the official client libraries export, so
//! the usual dashboards and alerts work unchanged):
//!
//! | series | from |
//! |---|---|
//! | `process_cpu_seconds_total` | `/proc/self/stat` utime + stime, in clock ticks |
//! | `process_resident_memory_bytes` | `/proc/self/stat` rss, in pages |
//! | `process_virtual_memory_bytes` | `/proc/self/stat` vsize |
//! | `process_open_fds` | entries of `/proc/self/fd` |
//! | `process_max_fds` | `RLIMIT_NOFILE` (soft) |
//! | `process_start_time_seconds` | `/proc/self/stat` starttime + `/proc/stat` btime |
//! | `quai_build_info{version}` | the crate version, value 1 |
//!
//! A leaf: `metrics::render` appends [`render`]. Off Linux (no
//! `/proc`) only `quai_build_info` is written.

use std::fmt::Write as _;

/// What `/proc` says about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; no memory is passed.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

/// The fields after the command name of a `/proc/PID/stat` line (the name
/// is in parentheses and may hold spaces or parentheses itself: everything
/// up to the *last* `)` is skipped). Index 0 is field 3 (`state`).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// Parse `/proc/self/stat` and `/proc/stat`'s `btime`.
pub fn parse(stat: &str, proc_stat: &str, ticks: u64, page: u64) -> Option<ProcessStats> {
    let f = stat_fields(stat)?;
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime, start, vsize, rss) =
        (field(14)?, field(15)?, field(22)?, field(23)?, field(24)?);
    let btime = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let ticks = ticks.max(1) as f64;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks,
        resident_bytes: rss * page,
        virtual_bytes: vsize,
        start_time_seconds: btime as f64 + start as f64 / ticks,
        open_fds: None,
        max_fds: None,
    })
}

/// This process's figures now, when `/proc` can be read.
pub fn current() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let proc_stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100);
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
    let mut s = parse(&stat, &proc_stat, ticks, page)?;
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into `lim`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
    {
        s.max_fds = Some(lim.rlim_cur);
    }
    Some(s)
}

fn gauge(out: &mut String, name: &str, kind: &str, help: &str, value: String) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The series of the module doc, in the text exposition format.
pub fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP quai_build_info The quai build running, as labels; always 1."
    );
    let _ = writeln!(out, "# TYPE quai_build_info gauge");
    // A crate version is semver: no character to escape in a label.
    let _ = writeln!(
        out,
        "quai_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let Some(s) = current() else { return };
    gauge(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        format!("{:.2}", s.cpu_seconds),
    );
    gauge(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        s.resident_bytes.to_string(),
    );
    gauge(
        out,
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        s.virtual_bytes.to_string(),
    );
    gauge(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        format!("{:.2}", s.start_time_seconds),
    );
    if let Some(n) = s.open_fds {
        gauge(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            n.to_string(),
        );
    }
    if let Some(n) = s.max_fds {
        gauge(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            n.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_hostile_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority nice threads
        // itrealvalue starttime vsize rss ...
        let stat = "4242 (qu ai) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 123400 987654 321 18446744073709551615";
        let s = parse(stat, "cpu 1 2 3\nbtime 1700000000\n", 100, 4096).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 321 * 4096);
        assert_eq!(s.virtual_bytes, 987654);
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 1234.0);
        assert!(parse("garbage", "btime 1", 100, 4096).is_none());
    }

    #[test]
    fn this_process_is_described() {
        let s = current().expect("/proc readable");
        assert!(s.resident_bytes > 0 && s.open_fds.unwrap_or(0) > 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0 * 365.0);
        let mut out = String::new();
        render(&mut out);
        for name in [
            "quai_build_info{version=",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(out.contains(name), "{name}: {out}");
        }
    }
}
