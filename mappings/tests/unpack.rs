//! Unpacking flows: archives are BUILT here, in a temp dir, so each case is
//! exactly what its name says (zip via the `zip` crate, tar via `tar`, gzip
//! via flate2; zip bombs and encrypted entries are hand-crafted bytes).

use std::convert::Infallible;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress};
use quai_mappings::detect::Format;
use quai_mappings::unpack::{
    walk, Entry, LimitKind, Limits, UnpackError, UnsafeReason, WalkSummary,
};

const UBL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>INV-1</ID></Invoice>"#;
const CII: &str = r#"<?xml version="1.0"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"/>"#;
const EDI: &str = "UNA:+.? 'UNB+UNOC:3+S+R+200101:1200+1'UNZ+0+1'";

struct Leaf {
    path: String,
    format: Format,
    depth: u32,
    bytes: Vec<u8>,
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(
    path: &Path,
    name: &str,
    limits: &Limits,
) -> (Result<WalkSummary, UnpackError<Infallible>>, Vec<Leaf>) {
    let mut leaves = Vec::new();
    let mut visit = |e: Entry<'_>| -> Result<(), Infallible> {
        let mut bytes = Vec::new();
        // A read error here is what the walker reports afterwards.
        let _ = e.reader.read_to_end(&mut bytes);
        leaves.push(Leaf {
            path: e.path.to_string(),
            format: e.format,
            depth: e.depth,
            bytes,
        });
        Ok(())
    };
    let r = walk(path, name, limits, &mut visit);
    (r, leaves)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar header written by hand (the tar crate refuses to write `..` names).
fn raw_tar_header(name: &str, kind: u8, size: u64, link: &str) -> [u8; 512] {
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

fn raw_tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend_from_slice(&raw_tar_header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// One entry of a hand-written zip.
struct RawZipEntry<'a> {
    name: &'a str,
    method: u16,
    flags: u16,
    crc: u32,
    uncompressed: u32,
    data: &'a [u8],
}

/// A zip written byte by byte: local headers, data, central directory, EOCD.
fn raw_zip(entries: &[RawZipEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let mut h = Vec::new();
        h.extend_from_slice(b"PK\x03\x04");
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&e.flags.to_le_bytes());
        h.extend_from_slice(&e.method.to_le_bytes());
        h.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        h.extend_from_slice(&e.crc.to_le_bytes());
        h.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        h.extend_from_slice(&e.uncompressed.to_le_bytes());
        h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&h);
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
/// them all: with a full flush the compressor forgets its history, so every
/// 1 MiB chunk compresses to the same bytes and can be repeated.
fn deflate_zeros(mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let one = |c: &mut Compress, flush| {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = c.total_in();
        c.compress_vec(&chunk, &mut out, flush).unwrap();
        assert_eq!(
            c.total_in() - before,
            chunk.len() as u64,
            "output buffer too small"
        );
        out
    };
    let mut c = Compress::new(Compression::best(), false);
    let first = one(&mut c, FlushCompress::Full);
    let second = one(&mut c, FlushCompress::Full);
    assert_eq!(
        first, second,
        "full-flush chunks must repeat for this trick"
    );
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

fn expect_err(r: Result<WalkSummary, UnpackError<Infallible>>) -> UnpackError<Infallible> {
    match r {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn plain_file_is_one_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "inv.xml", UBL.as_bytes());
    let (r, leaves) = run(&p, "inv.xml", &Limits::default());
    let s = r.unwrap();
    assert_eq!(s.leaves, 1);
    assert_eq!(s.entries, 0);
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].path, "inv.xml");
    assert_eq!(leaves[0].format, Format::Ubl);
    assert_eq!(leaves[0].depth, 0);
    assert_eq!(leaves[0].bytes, UBL.as_bytes());
}

#[test]
fn large_plain_document_streams_whole() {
    // Larger than the peek buffer and BufReader capacity: bytes must come
    // back in order and complete.
    let mut doc = UBL.as_bytes().to_vec();
    for i in 0..200_000u32 {
        doc.extend_from_slice(format!("<!-- {i} -->\n").as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "big.xml.gz", &gzip(&doc));
    let (r, leaves) = run(&p, "big.xml.gz", &Limits::default());
    let s = r.unwrap();
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].path, "big.xml.gz/big.xml");
    assert_eq!(leaves[0].depth, 1);
    assert_eq!(leaves[0].bytes, doc);
    assert_eq!(s.unpacked_bytes, doc.len() as u64);
}

#[test]
fn zip_tar_and_tar_gz() {
    let files: &[(&str, &[u8])] = &[
        ("inv-001.xml", UBL.as_bytes()),
        ("sub/inv-002.xml", CII.as_bytes()),
        ("x.edi", EDI.as_bytes()),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("batch.zip", zip_of(files)),
        ("batch.tar", tar_of(files)),
        ("batch.tar.gz", gzip(&tar_of(files))),
        // Content decides, not names: a zip named .txt.
        ("batch.txt", zip_of(files)),
    ] {
        let p = write(dir.path(), name, &bytes);
        let (r, leaves) = run(&p, name, &Limits::default());
        let s = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.leaves, 3, "{name}");
        let got: Vec<(String, Format)> =
            leaves.iter().map(|l| (l.path.clone(), l.format)).collect();
        assert_eq!(
            got,
            vec![
                (format!("{name}/inv-001.xml"), Format::Ubl),
                (format!("{name}/sub/inv-002.xml"), Format::Cii),
                (format!("{name}/x.edi"), Format::Edifact),
            ],
            "{name}"
        );
        assert_eq!(leaves[1].bytes, CII.as_bytes());
        assert!(leaves.iter().all(|l| l.depth == 1), "{name}");
    }
}

#[test]
fn tar_gz_holding_a_zip_and_a_gz() {
    let inner_zip = zip_of(&[("a.xml", UBL.as_bytes()), ("b.xml", CII.as_bytes())]);
    let outer = gzip(&tar_of(&[
        ("part1.zip", &inner_zip),
        ("c.xml.gz", &gzip(UBL.as_bytes())),
        ("d.xml", UBL.as_bytes()),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flow.tgz", &outer);
    let (r, leaves) = run(&p, "flow.tgz", &Limits::default());
    let s = r.unwrap();
    let paths: Vec<&str> = leaves.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "flow.tgz/part1.zip/a.xml",
            "flow.tgz/part1.zip/b.xml",
            "flow.tgz/c.xml.gz/c.xml",
            "flow.tgz/d.xml"
        ]
    );
    assert_eq!(leaves[1].format, Format::Cii);
    assert_eq!(leaves[0].depth, 2);
    assert_eq!(leaves[3].depth, 1);
    assert_eq!(s.max_depth_seen, 2);
    assert_eq!(s.entries, 3 + 2);
}

#[test]
fn zip_holding_tar_gz() {
    let inner = gzip(&tar_of(&[("a.xml", UBL.as_bytes())]));
    let outer = zip_of(&[("in.tar.gz", &inner)]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flow.zip", &outer);
    let (r, leaves) = run(&p, "flow.zip", &Limits::default());
    r.unwrap();
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].path, "flow.zip/in.tar.gz/a.xml");
    assert_eq!(leaves[0].bytes, UBL.as_bytes());
}

#[test]
fn too_deep() {
    let z1 = zip_of(&[("a.xml", UBL.as_bytes())]);
    let z2 = zip_of(&[("z1.zip", &z1)]);
    let z3 = zip_of(&[("z2.zip", &z2)]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "z3.zip", &z3);
    let (r, leaves) = run(&p, "z3.zip", &Limits::default());
    let e = expect_err(r);
    assert!(
        matches!(&e, UnpackError::TooDeep { path, max_depth: 2 } if path == "z3.zip/z2.zip/z1.zip"),
        "{e:?}"
    );
    assert_eq!(e.irr_code(), "IRR_TYPE_F");
    assert!(leaves.is_empty());
    // A gzip of a gzip of a tar.gz is three levels as well.
    let g = gzip(&gzip(&gzip(&tar_of(&[("a.xml", UBL.as_bytes())]))));
    let p = write(dir.path(), "g.gz", &g);
    assert!(matches!(
        expect_err(run(&p, "g.gz", &Limits::default()).0),
        UnpackError::TooDeep { .. }
    ));
    // Allowed with a deeper limit.
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let p = write(dir.path(), "z3b.zip", &z3);
    let (r, leaves) = run(&p, "z3b.zip", &limits);
    r.unwrap();
    assert_eq!(leaves[0].path, "z3b.zip/z2.zip/z1.zip/a.xml");
}

#[test]
fn empty_flows() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.xml", b"");
    let e = expect_err(run(&p, "empty.xml", &Limits::default()).0);
    assert!(matches!(e, UnpackError::Empty { .. }), "{e:?}");
    assert_eq!(e.irr_code(), "IRR_VIDE_F");
    // An empty zip (only the end record) and a tar of directories hold no document.
    let p = write(dir.path(), "empty.zip", &zip_of(&[]));
    assert_eq!(
        expect_err(run(&p, "empty.zip", &Limits::default()).0).irr_code(),
        "IRR_VIDE_F"
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "dir/", std::io::empty()).unwrap();
    let p = write(dir.path(), "dirs.tar", &b.into_inner().unwrap());
    assert_eq!(
        expect_err(run(&p, "dirs.tar", &Limits::default()).0).irr_code(),
        "IRR_VIDE_F"
    );
}

#[test]
fn gzip_bomb_refused_while_reading() {
    // 2 GiB of zeros as 128 concatenated gzip members of 16 MiB (a valid
    // multi-member gzip), about 2 MB on disk.
    let member = gzip(&vec![0u8; 16 << 20]);
    let mut bomb = Vec::with_capacity(member.len() * 128);
    for _ in 0..128 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 4 << 20);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bomb.xml.gz", &bomb);
    // The visitor only counts bytes: nothing proportional to the bomb is kept.
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
    let limits = Limits::default();
    let e = walk(&p, "bomb.xml.gz", &limits, &mut visit).unwrap_err();
    assert!(
        matches!(
            e,
            UnpackError::TooLarge {
                limit: LimitKind::Ratio,
                max: 100,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.irr_code(), "IRR_TAILLE_F");
    assert!(e.to_string().contains("compression ratio"), "{e}");
    // Stopped at the ratio allowance (100 × 2 MB), long before 2 GiB.
    let allowance = 100 * (bomb.len() as u64).max(1 << 20);
    assert!(
        seen <= allowance && seen > allowance / 2,
        "seen {seen}, allowance {allowance}"
    );

    // With a generous ratio, the total-size limit stops it.
    let limits = Limits {
        max_ratio: 1_000_000,
        max_total_unpacked: 64 << 20,
        ..Limits::default()
    };
    let e = expect_err(run(&p, "bomb.xml.gz", &limits).0);
    assert!(
        matches!(
            e,
            UnpackError::TooLarge {
                limit: LimitKind::TotalUnpacked,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn zip_bomb_refused_while_reading() {
    // One entry claiming ~2 GB, really 2 GiB of zeros, about 2 MB packed.
    let data = deflate_zeros(2048);
    assert!(data.len() < 4 << 20, "{}", data.len());
    let bomb = raw_zip(&[RawZipEntry {
        name: "bomb.xml",
        method: 8,
        flags: 0,
        crc: 0,
        uncompressed: 2_000_000_000,
        data: &data,
    }]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bomb.zip", &bomb);
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
    let bomb_len = bomb.len() as u64;
    drop((data, bomb));
    let e = walk(&p, "bomb.zip", &Limits::default(), &mut visit).unwrap_err();
    assert!(
        matches!(&e, UnpackError::TooLarge { limit: LimitKind::Ratio, path, .. } if path == "bomb.zip/bomb.xml"),
        "{e:?}"
    );
    assert!(
        seen <= 100 * bomb_len.max(1 << 20) && seen > 50 << 20,
        "{seen}"
    );
    // A per-document limit catches it as well, sooner.
    let limits = Limits {
        max_entry_bytes: 8 << 20,
        ..Limits::default()
    };
    let e = expect_err(run(&p, "bomb.zip", &limits).0);
    assert!(
        matches!(e, UnpackError::TooLarge { limit: LimitKind::EntryBytes, max, .. } if max == 8 << 20),
        "{e:?}"
    );
}

#[test]
fn bomb_inside_a_tar_gz() {
    // A tar.gz whose single entry is a zip bomb: spooled to a temp file
    // under the per-entry limit, then refused while inflating.
    let data = deflate_zeros(512);
    let bomb = raw_zip(&[RawZipEntry {
        name: "b.xml",
        method: 8,
        flags: 0,
        crc: 0,
        uncompressed: 1 << 30,
        data: &data,
    }]);
    let outer = gzip(&tar_of(&[("bomb.zip", &bomb)]));
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flow.tar.gz", &outer);
    let e = expect_err(run(&p, "flow.tar.gz", &Limits::default()).0);
    assert!(
        matches!(&e, UnpackError::TooLarge { limit: LimitKind::Ratio, path, .. } if path == "flow.tar.gz/bomb.zip/b.xml"),
        "{e:?}"
    );
}

#[test]
fn too_many_entries() {
    let names: Vec<String> = (0..50).map(|i| format!("inv-{i}.xml")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), UBL.as_bytes())).collect();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_entries: 20,
        ..Limits::default()
    };
    for (name, bytes) in [("many.zip", zip_of(&files)), ("many.tar", tar_of(&files))] {
        let p = write(dir.path(), name, &bytes);
        let (r, leaves) = run(&p, name, &limits);
        let e = expect_err(r);
        assert!(
            matches!(
                e,
                UnpackError::TooLarge {
                    limit: LimitKind::Entries,
                    max: 20,
                    ..
                }
            ),
            "{name}: {e:?}"
        );
        assert_eq!(e.irr_code(), "IRR_TAILLE_F");
        // A zip is refused from its directory before any entry is read;
        // a tar (a stream) after the 20th.
        assert!(leaves.len() <= 20, "{name}");
    }
    let p = write(dir.path(), "ok.zip", &zip_of(&files));
    assert_eq!(
        run(
            &p,
            "ok.zip",
            &Limits {
                max_entries: 50,
                ..Limits::default()
            }
        )
        .0
        .unwrap()
        .leaves,
        50
    );
}

#[test]
fn unsafe_names() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, reason) in [
        ("../evil.xml", UnsafeReason::ParentComponent),
        ("ok/../../evil.xml", UnsafeReason::ParentComponent),
        ("/etc/passwd", UnsafeReason::AbsolutePath),
        ("C:\\evil.xml", UnsafeReason::DriveLetter),
    ] {
        let z = raw_zip(&[RawZipEntry {
            name: bad,
            method: 0,
            flags: 0,
            crc: crc(UBL.as_bytes()),
            uncompressed: UBL.len() as u32,
            data: UBL.as_bytes(),
        }]);
        let p = write(dir.path(), "bad.zip", &z);
        let (r, leaves) = run(&p, "bad.zip", &Limits::default());
        let e = expect_err(r);
        assert!(
            matches!(&e, UnpackError::Unsafe { reason: r, .. } if *r == reason),
            "zip {bad}: {e:?}"
        );
        assert_eq!(e.irr_code(), "IRR_NOM_PJ");
        assert!(leaves.is_empty());
        let t = raw_tar(&[
            ("good.xml", b'0', UBL.as_bytes(), ""),
            (bad, b'0', UBL.as_bytes(), ""),
        ]);
        let p = write(dir.path(), "bad.tar", &t);
        let (r, leaves) = run(&p, "bad.tar", &Limits::default());
        let e = expect_err(r);
        assert!(
            matches!(&e, UnpackError::Unsafe { reason: r, .. } if *r == reason),
            "tar {bad}: {e:?}"
        );
        assert_eq!(leaves.len(), 1, "entries before the bad one were visited");
    }
}

#[test]
fn tar_links_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, reason) in [
        (b'2', UnsafeReason::SymbolicLink),
        (b'1', UnsafeReason::HardLink),
        (b'3', UnsafeReason::Device),
        (b'4', UnsafeReason::Device),
        (b'6', UnsafeReason::Device),
    ] {
        let t = gzip(&raw_tar(&[
            ("link.xml", kind, b"", "/etc/passwd"),
            ("inv.xml", b'0', UBL.as_bytes(), ""),
        ]));
        let p = write(dir.path(), "l.tar.gz", &t);
        let (r, leaves) = run(&p, "l.tar.gz", &Limits::default());
        let e = expect_err(r);
        assert!(
            matches!(&e, UnpackError::Unsafe { reason: r, path } if *r == reason && path == "l.tar.gz/link.xml"),
            "{e:?}"
        );
        assert_eq!(e.irr_code(), "IRR_TYPE_F");
        assert!(leaves.is_empty());
    }
}

#[test]
fn truncated_archives() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = Vec::new();
    for i in 0..5000 {
        big.extend_from_slice(format!("<line n='{i}'>{}</line>\n", i * 7919 % 10007).as_bytes());
    }
    let files: &[(&str, &[u8])] = &[("a.xml", UBL.as_bytes()), ("b.xml", &big)];

    let gz = gzip(&big);
    let p = write(dir.path(), "t.xml.gz", &gz[..gz.len() / 2]);
    let e = expect_err(run(&p, "t.xml.gz", &Limits::default()).0);
    assert!(matches!(e, UnpackError::Corrupt { .. }), "{e:?}");
    assert_eq!(e.irr_code(), "IRR_SYNTAX");
    // Only the 8-byte trailer (CRC, size) missing.
    let p = write(dir.path(), "t2.xml.gz", &gz[..gz.len() - 8]);
    assert!(matches!(
        expect_err(run(&p, "t2.xml.gz", &Limits::default()).0),
        UnpackError::Corrupt { .. }
    ));

    let z = zip_of(files);
    let p = write(dir.path(), "t.zip", &z[..z.len() - 30]);
    let e = expect_err(run(&p, "t.zip", &Limits::default()).0);
    assert!(
        matches!(&e, UnpackError::Corrupt { message, .. } if message.contains("truncated")),
        "{e:?}"
    );

    let t = tar_of(files);
    // Cut inside b.xml's data.
    let p = write(dir.path(), "t.tar", &t[..1024 + 512 + 2000]);
    let (r, _) = run(&p, "t.tar", &Limits::default());
    let e = expect_err(r);
    assert!(
        matches!(&e, UnpackError::Corrupt { message, path } if message.contains("truncated") && path == "t.tar/b.xml"),
        "{e:?}"
    );
    // Cut inside a header.
    let p = write(dir.path(), "t2.tar", &t[..1024 + 100]);
    assert!(matches!(
        expect_err(run(&p, "t2.tar", &Limits::default()).0),
        UnpackError::Corrupt { .. }
    ));
    // tar.gz cut in the middle.
    let tg = gzip(&t);
    let p = write(dir.path(), "t.tar.gz", &tg[..tg.len() / 2]);
    assert!(matches!(
        expect_err(run(&p, "t.tar.gz", &Limits::default()).0),
        UnpackError::Corrupt { .. }
    ));
}

#[test]
fn corrupt_zip_entry_data() {
    // Central directory intact, entry data damaged: the CRC check fails.
    let z = raw_zip(&[RawZipEntry {
        name: "a.xml",
        method: 0,
        flags: 0,
        crc: crc(UBL.as_bytes()) ^ 1,
        uncompressed: UBL.len() as u32,
        data: UBL.as_bytes(),
    }]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "c.zip", &z);
    let e = expect_err(run(&p, "c.zip", &Limits::default()).0);
    assert!(
        matches!(&e, UnpackError::Corrupt { path, .. } if path == "c.zip/a.xml"),
        "{e:?}"
    );
}

#[test]
fn encrypted_zip_entry() {
    // General-purpose flag bit 0 set: traditional PKWARE encryption (12-byte
    // encryption header before the data).
    let mut data = vec![0x5au8; 12];
    data.extend_from_slice(UBL.as_bytes());
    let z = raw_zip(&[RawZipEntry {
        name: "secret.xml",
        method: 0,
        flags: 1,
        crc: crc(UBL.as_bytes()),
        uncompressed: UBL.len() as u32,
        data: &data,
    }]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "enc.zip", &z);
    let (r, leaves) = run(&p, "enc.zip", &Limits::default());
    let e = expect_err(r);
    assert!(
        matches!(&e, UnpackError::Encrypted { path } if path == "enc.zip/secret.xml"),
        "{e:?}"
    );
    assert!(e.to_string().contains("password"), "{e}");
    assert!(leaves.is_empty());
}

#[test]
fn hand_written_zip_is_read() {
    // The raw zip writer used by the hostile cases produces zips the walker
    // reads when nothing is wrong with them (so those cases test what they say).
    let z = raw_zip(&[RawZipEntry {
        name: "a.xml",
        method: 0,
        flags: 0,
        crc: crc(UBL.as_bytes()),
        uncompressed: UBL.len() as u32,
        data: UBL.as_bytes(),
    }]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.zip", &z);
    let (r, leaves) = run(&p, "ok.zip", &Limits::default());
    r.unwrap();
    assert_eq!(leaves[0].bytes, UBL.as_bytes());
    // And the deflate-of-zeros trick really inflates to zeros.
    let data = deflate_zeros(3);
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(&data[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().all(|&b| b == 0));
    // A raw tar with a regular entry is read too.
    let p = write(
        dir.path(),
        "ok.tar",
        &raw_tar(&[("a.xml", b'0', UBL.as_bytes(), "")]),
    );
    assert_eq!(
        run(&p, "ok.tar", &Limits::default()).1[0].bytes,
        UBL.as_bytes()
    );
}

#[test]
fn visitor_error_stops_walk() {
    let files: &[(&str, &[u8])] = &[("a.xml", UBL.as_bytes()), ("b.xml", UBL.as_bytes())];
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "v.zip", &zip_of(files));
    let mut calls = 0;
    let mut visit = |e: Entry<'_>| -> Result<(), String> {
        calls += 1;
        let first = e
            .reader
            .fill_buf()
            .map_err(|e| e.to_string())?
            .first()
            .copied();
        assert_eq!(first, Some(b'<'));
        Err(format!("stop at {}", e.path))
    };
    let e = walk(&p, "v.zip", &Limits::default(), &mut visit).unwrap_err();
    assert!(
        matches!(&e, UnpackError::Visit(m) if m == "stop at v.zip/a.xml"),
        "{e:?}"
    );
    assert_eq!(e.irr_code(), "INTERNAL");
    assert_eq!(calls, 1);
}

#[test]
fn unknown_and_empty_leaves_are_delivered() {
    let files: &[(&str, &[u8])] = &[("x.bin", &[0u8, 1, 2, 3]), ("empty.xml", b"")];
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "u.zip", &zip_of(files));
    let (r, leaves) = run(&p, "u.zip", &Limits::default());
    assert_eq!(r.unwrap().leaves, 2);
    assert_eq!(leaves[0].format, Format::Unknown);
    assert_eq!(leaves[1].format, Format::Unknown);
    assert!(leaves[1].bytes.is_empty());
}

fn crc(data: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(data);
    h.sum()
}

fn pax_record(key: &str, value: &str) -> String {
    // "<len> key=value\n" where len counts itself.
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

#[test]
fn tar_long_names_gnu_and_pax() {
    let long = format!("{}/inv-001.xml", "d".repeat(150));
    // The tar crate writes a GNU long-name entry for names over 100 bytes.
    let t = tar_of(&[(long.as_str(), UBL.as_bytes())]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "long.tar", &t);
    let (r, leaves) = run(&p, "long.tar", &Limits::default());
    r.unwrap();
    assert_eq!(leaves[0].path, format!("long.tar/{long}"));
    assert_eq!(leaves[0].bytes, UBL.as_bytes());

    // A PAX header overriding the name.
    let pax = pax_record("path", "pax/renamed.xml");
    let t = raw_tar(&[
        ("PaxHeader", b'x', pax.as_bytes(), ""),
        ("short.xml", b'0', UBL.as_bytes(), ""),
    ]);
    let p = write(dir.path(), "pax.tar", &t);
    let (r, leaves) = run(&p, "pax.tar", &Limits::default());
    r.unwrap();
    assert_eq!(leaves[0].path, "pax.tar/pax/renamed.xml");

    // ... which must not smuggle a `..` past the check.
    let pax = pax_record("path", "../../etc/cron.d/evil");
    let t = raw_tar(&[
        ("PaxHeader", b'x', pax.as_bytes(), ""),
        ("short.xml", b'0', UBL.as_bytes(), ""),
    ]);
    let p = write(dir.path(), "paxevil.tar", &t);
    let e = expect_err(run(&p, "paxevil.tar", &Limits::default()).0);
    assert!(
        matches!(
            e,
            UnpackError::Unsafe {
                reason: UnsafeReason::ParentComponent,
                ..
            }
        ),
        "{e:?}"
    );

    // A PAX size disagreeing with the header (parsers would see different archives).
    let pax = pax_record("size", "99999");
    let t = raw_tar(&[
        ("PaxHeader", b'x', pax.as_bytes(), ""),
        ("short.xml", b'0', UBL.as_bytes(), ""),
    ]);
    let p = write(dir.path(), "paxsize.tar", &t);
    let e = expect_err(run(&p, "paxsize.tar", &Limits::default()).0);
    assert!(
        matches!(&e, UnpackError::Corrupt { message, .. } if message.contains("PAX size")),
        "{e:?}"
    );

    // An oversized GNU long-name entry is refused, not read into memory.
    let huge = vec![b'a'; 200 * 1024];
    let t = raw_tar(&[
        ("././@LongLink", b'L', &huge, ""),
        ("x.xml", b'0', UBL.as_bytes(), ""),
    ]);
    let p = write(dir.path(), "hugename.tar", &t);
    let e = expect_err(run(&p, "hugename.tar", &Limits::default()).0);
    assert!(
        matches!(&e, UnpackError::Corrupt { message, .. } if message.contains("extended header")),
        "{e:?}"
    );
}

#[test]
fn zip_symlink_refused() {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.add_symlink("link.xml", "/etc/passwd", opts).unwrap();
    let z = w.finish().unwrap().into_inner();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "sym.zip", &z);
    let e = expect_err(run(&p, "sym.zip", &Limits::default()).0);
    assert!(
        matches!(
            e,
            UnpackError::Unsafe {
                reason: UnsafeReason::SymbolicLink,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn nested_zip_spool_is_limited() {
    // A zip inside a tar is spooled to a temp file; the spool obeys the
    // per-document limit.
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let inner = zip_of(&[("a.bin", &big)]);
    let outer = tar_of(&[("inner.zip", &inner)]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.tar", &outer);
    let limits = Limits {
        max_entry_bytes: 100_000,
        ..Limits::default()
    };
    let e = expect_err(run(&p, "t.tar", &limits).0);
    assert!(
        matches!(&e, UnpackError::TooLarge { limit: LimitKind::EntryBytes, path, .. } if path == "t.tar/inner.zip"),
        "{e:?}"
    );
}

/// A small deterministic generator for mutation tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_archives_never_panic() {
    let inner_zip = zip_of(&[("a.xml", UBL.as_bytes()), ("b.edi", EDI.as_bytes())]);
    let seeds = [
        zip_of(&[("a.xml", UBL.as_bytes()), ("b.xml", CII.as_bytes())]),
        tar_of(&[("a.xml", UBL.as_bytes()), ("z.zip", &inner_zip)]),
        gzip(&tar_of(&[("a.xml", UBL.as_bytes())])),
        gzip(UBL.as_bytes()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let limits = Limits {
        max_total_unpacked: 8 << 20,
        max_entry_bytes: 4 << 20,
        ..Limits::default()
    };
    let mut outcomes = [0usize; 2];
    for round in 0..400 {
        let seed = &seeds[round % seeds.len()];
        let mut bytes = seed.clone();
        let edits = 1 + (rng.next() % 4) as usize;
        for _ in 0..edits {
            let i = (rng.next() as usize) % bytes.len();
            match rng.next() % 3 {
                0 => bytes[i] = rng.next() as u8,
                1 => bytes.truncate(i.max(1)),
                _ => bytes[i] ^= 0x80,
            }
        }
        let p = write(dir.path(), "m.bin", &bytes);
        let (r, _) = run(&p, "m.bin", &limits);
        outcomes[r.is_ok() as usize] += 1;
    }
    // Both outcomes occur: the mutations reach the archive readers.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
