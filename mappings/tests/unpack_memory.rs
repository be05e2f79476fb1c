//! Bombs are refused without memory in proportion to what they claim.
//!
//! Alone in its own test binary so that no other test allocates while the
//! process's peak resident memory (VmHWM) is measured around each walk.

use std::convert::Infallible;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress};
use quai_mappings::unpack::{walk, Entry, LimitKind, Limits, UnpackError};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reset the peak counter (Linux >= 4.0: write 5 to clear_refs).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Raw deflate of `mib` MiB of zeros: full-flush chunks repeat byte for byte.
fn deflate_zeros(mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut one = Vec::with_capacity(64 * 1024);
    c.compress_vec(&chunk, &mut one, FlushCompress::Full)
        .unwrap();
    let mut stream = Vec::with_capacity(one.len() * mib + 16);
    for _ in 0..mib {
        stream.extend_from_slice(&one);
    }
    let mut two = Vec::with_capacity(64 * 1024);
    c.compress_vec(&chunk, &mut two, FlushCompress::Full)
        .unwrap();
    assert_eq!(one, two);
    let mut tail = Vec::with_capacity(64);
    c.compress_vec(&[], &mut tail, FlushCompress::Finish)
        .unwrap();
    stream.extend_from_slice(&tail);
    stream
}

/// A one-entry zip (deflate) claiming `claimed` bytes.
fn zip_one(name: &str, data: &[u8], claimed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut local = Vec::new();
    local.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00");
    local.extend_from_slice(&0u32.to_le_bytes());
    local.extend_from_slice(&(data.len() as u32).to_le_bytes());
    local.extend_from_slice(&claimed.to_le_bytes());
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&0u16.to_le_bytes());
    local.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&local);
    out.extend_from_slice(data);
    let cd_offset = out.len() as u32;
    let mut cd = Vec::new();
    cd.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00");
    cd.extend_from_slice(&0u32.to_le_bytes());
    cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
    cd.extend_from_slice(&claimed.to_le_bytes());
    cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
    cd.extend_from_slice(&[0; 8]);
    cd.extend_from_slice(&0u32.to_le_bytes());
    cd.extend_from_slice(&0u32.to_le_bytes());
    cd.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\x00\x01\x00");
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn walk_measured(path: &std::path::Path, name: &str) -> (UnpackError<Infallible>, u64, u64) {
    let mut seen = 0u64;
    let mut visit = |e: Entry<'_>| -> Result<(), Infallible> {
        let mut buf = [0u8; 65536];
        while let Ok(n) = e.reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen += n as u64;
        }
        Ok(())
    };
    reset_peak_rss();
    let err = walk(path, name, &Limits::default(), &mut visit).unwrap_err();
    let peak = peak_rss_kib();
    (err, peak, seen)
}

#[test]
fn bombs_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Zip: one entry claiming 2 GB, really 2 GiB of zeros, ~2 MB packed.
    let zip = zip_one("bomb.xml", &deflate_zeros(2048), 2_000_000_000);
    let zip_path = dir.path().join("bomb.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    // Gzip: 128 members of 16 MiB of zeros (2 GiB), ~2 MB packed.
    let mut member = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        member.write_all(&zeros).unwrap();
    }
    let member = member.finish().unwrap();
    drop(zeros);
    let mut f = std::fs::File::create(dir.path().join("bomb.xml.gz")).unwrap();
    for _ in 0..128 {
        f.write_all(&member).unwrap();
    }
    drop(f);
    drop(zip);

    for name in ["bomb.zip", "bomb.xml.gz"] {
        let (err, peak_kib, seen) = walk_measured(&dir.path().join(name), name);
        assert!(
            matches!(
                err,
                UnpackError::TooLarge {
                    limit: LimitKind::Ratio,
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        assert_eq!(err.irr_code(), "IRR_TAILLE_F");
        // More than 50 MB went through the visitor before the refusal, yet
        // the process never held more than a few MB beyond its baseline.
        assert!(seen > 50 << 20, "{name}: {seen}");
        assert!(
            peak_kib < 40 * 1024,
            "{name}: peak RSS {peak_kib} KiB during the walk"
        );
    }
}
