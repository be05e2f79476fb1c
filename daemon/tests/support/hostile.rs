//! Builders for the hostile-input tests: archives written byte by byte (the
//! archive crates refuse to write what an attacker sends), bombs built
//! without ever holding what they expand to, and readers of the daemon's
//! own memory figures.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use flate2::{Compress, Compression, FlushCompress};

/// The official UBL example with its invoice number replaced by `number`.
pub fn ubl_numbered(template: &str, number: &str) -> Vec<u8> {
    let out = template.replacen(
        "<cbc:ID>TOSL108</cbc:ID>",
        &format!("<cbc:ID>{number}</cbc:ID>"),
        1,
    );
    assert_ne!(out, template, "fixture changed: TOSL108 not found");
    out.into_bytes()
}

/// Deterministic pseudo-random bytes (no dependency).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

/// A tar header written by hand (the tar crate refuses `..` names and
/// checks link names): `kind` is the type flag (`b'0'` file, `b'1'` hard
/// link, `b'2'` symbolic link, `b'5'` directory).
pub fn raw_tar_header(name: &str, kind: u8, size: u64, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// A tar of (name, type flag, data, link target) entries.
pub fn raw_tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend_from_slice(&raw_tar_header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(data);
    h.sum()
}

/// One entry of a hand-written zip.
pub struct RawZipEntry<'a> {
    pub name: &'a str,
    /// 0 stored, 8 deflate.
    pub method: u16,
    /// General-purpose flags (bit 0: encrypted).
    pub flags: u16,
    pub crc: u32,
    pub uncompressed: u32,
    pub data: &'a [u8],
}

impl<'a> RawZipEntry<'a> {
    /// A stored (uncompressed) entry with a correct CRC.
    pub fn stored(name: &'a str, data: &'a [u8]) -> Self {
        RawZipEntry {
            name,
            method: 0,
            flags: 0,
            crc: crc32(data),
            uncompressed: data.len() as u32,
            data,
        }
    }
}

/// A zip written byte by byte: local headers, data, central directory, EOCD.
pub fn raw_zip(entries: &[RawZipEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.uncompressed.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(e.data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&e.uncompressed.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A raw deflate stream of `mib` MiB of zeros, built without compressing
/// them all: after a full flush the compressor forgets its history, so every
/// 1 MiB chunk compresses to the same bytes and can be repeated.
pub fn deflate_zeros(mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let one = |c: &mut Compress| {
        let mut out = Vec::with_capacity(64 * 1024);
        c.compress_vec(&chunk, &mut out, FlushCompress::Full)
            .unwrap();
        out
    };
    let mut c = Compress::new(Compression::best(), false);
    let first = one(&mut c);
    let second = one(&mut c);
    assert_eq!(first, second, "full-flush chunks must repeat");
    let mut stream = Vec::with_capacity(first.len() * mib + 16);
    for _ in 0..mib {
        stream.extend_from_slice(&first);
    }
    let mut tail = Vec::with_capacity(64);
    c.compress_vec(&[], &mut tail, FlushCompress::Finish)
        .unwrap();
    stream.extend_from_slice(&tail);
    stream
}

/// A zip bomb: one deflated entry of `mib` MiB of zeros (claiming 2 GB in
/// its headers), about 1 KiB packed per MiB unpacked.
pub fn zip_bomb(name: &str, mib: usize) -> Vec<u8> {
    let data = deflate_zeros(mib);
    raw_zip(&[RawZipEntry {
        name,
        method: 8,
        flags: 0,
        crc: 0,
        uncompressed: 2_000_000_000,
        data: &data,
    }])
}

/// A gzip bomb written straight to `path`: `members` concatenated gzip
/// members of 16 MiB of zeros each (a multi-member gzip is one stream).
pub fn write_gzip_bomb(path: &Path, members: usize) {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        member.write_all(&zeros).unwrap();
    }
    let member = member.finish().unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    for _ in 0..members {
        f.write_all(&member).unwrap();
    }
    f.sync_all().unwrap();
}

/// A minimal, valid PDF 1.4 with one empty page and no embedded file.
pub fn plain_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Encode text as ISO-8859-1 (every char must be below U+0100).
pub fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(c as u32).expect("character outside ISO-8859-1"))
        .collect()
}

/// A field of /proc/self/status, in KiB (`VmHWM`, `VmRSS`).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reset the peak resident set (VmHWM) to the current one (Linux >= 4.0).
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM via /proc/self/clear_refs");
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
