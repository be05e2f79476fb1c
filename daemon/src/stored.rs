//! A flow's stored bytes, read again after processing: the CONTRL of an
//! EDIFACT interchange is written from them, and whether a flow owes a
//! CONTRL at all is decided from their first bytes, as
//! `quai_mappings::detect` tells formats apart.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The stored bytes of a flow as a stream: gunzipped when the flow is a
/// gzip file (an interchange sent as `.edi.gz` is still an interchange),
/// as they are otherwise. The flow was read under its limits before, so
/// reading it again is bounded.
pub fn open(path: &Path) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let file = File::open(path)?;
    Ok(if gz {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::new(file),
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    })
}

/// True when the stored bytes (gunzipped if need be) are an EDIFACT
/// interchange.
pub fn is_edifact(path: &Path) -> bool {
    use quai_mappings::detect::{self, Format};
    let mut head = Vec::with_capacity(detect::SNIFF_LEN);
    let read = open(path).and_then(|r| r.take(detect::SNIFF_LEN as u64).read_to_end(&mut head));
    read.is_ok() && detect::sniff(&head) == Format::Edifact
}
