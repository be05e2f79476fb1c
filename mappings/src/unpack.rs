//! Open gzip, zip, tar and tar.gz flows (nested once) under limits.
//!
//! A flow is whatever a partner dropped: one document, or an archive of
//! documents, possibly an archive holding archives (a zip inside a tar.gz).
//! [`walk`] streams through it and calls a visitor once per *leaf document*
//! with its path inside the flow (`batch.tar.gz/part1.zip/inv-001.xml`), its
//! format (from [`crate::detect::sniff`] on a peeked prefix) and a `BufRead`
//! over its bytes. Nothing is loaded whole: tar and gzip are read as streams,
//! a zip is read from the flow file on disk (zip needs `Seek`), and a zip
//! nested in a tar or gzip is spooled to an anonymous temp file, not RAM.
//!
//! Why the limits are enforced while reading: archive headers lie. Sizes in
//! zip and tar headers and entry counts are attacker-controlled, so every
//! decompressing stream is wrapped in a counting reader that stops the walk
//! as soon as the real number of produced bytes crosses a limit
//! ([`Limits`]). A zip or gzip bomb is therefore refused after at most the
//! limit's worth of decompression, with no allocation proportional to it.
//!
//! What counts as *unpacked bytes*: every byte produced by a decompressor
//! (gzip members, zip entries). Tar entries are slices of their parent's
//! bytes and are not counted twice. The *ratio* is unpacked bytes over the
//! size of the flow file, measured against at least [`RATIO_FLOOR`] bytes
//! so that a tiny, well-compressed single invoice is not refused.
//!
//! Depth: the flow itself is level 0; each archive opened adds one level,
//! except that a gzip directly around a tar (`.tar.gz`) is one archive. With
//! the default `max_depth = 2` a tar.gz may hold a zip that holds documents,
//! but not a zip holding another zip.
//!
//! Refused outright ([`UnpackError::Unsafe`]): entry names with a `..`
//! component, absolute names, drive letters or NUL bytes; tar symbolic
//! links, hard links, devices, FIFOs and sparse files; zip symbolic links.
//! Encrypted zip entries are refused ([`UnpackError::Encrypted`]). Truncated
//! or corrupt gzip, zip and tar give [`UnpackError::Corrupt`].
//!
//! Each error maps to the French platform's reason for an inadmissible flow
//! via [`UnpackError::irr_code`].

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::detect::{sniff, Format, SNIFF_LEN};

/// Unpacked bytes are compared to `max_ratio × max(flow size, RATIO_FLOOR)`.
pub const RATIO_FLOOR: u64 = 1 << 20;

/// Largest GNU long-name or PAX extended header accepted in a tar (they are
/// read into memory to learn an entry's name).
const MAX_TAR_META: u64 = 64 * 1024;

/// Limits on what one flow may unpack to. All are checked against bytes
/// actually produced, never against what headers claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Sum of bytes produced by all decompression (default 1 GiB).
    pub max_total_unpacked: u64,
    /// Unpacked bytes per byte of flow (default 100), see [`RATIO_FLOOR`].
    pub max_ratio: u64,
    /// Entries in all archives of the flow, directories included (default 10,000).
    pub max_entries: u64,
    /// Archive nesting (default 2: an archive may contain archives once).
    pub max_depth: u32,
    /// Bytes of one leaf document or one nested zip (default 256 MiB).
    pub max_entry_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_unpacked: 1 << 30,
            max_ratio: 100,
            max_entries: 10_000,
            max_depth: 2,
            max_entry_bytes: 256 << 20,
        }
    }
}

/// One leaf document of a flow, handed to the visitor.
pub struct Entry<'a> {
    /// Path inside the flow, starting with the flow's name:
    /// `batch.zip/inv-001.xml`; for a plain file, just its name.
    pub path: &'a str,
    /// Format detected from the first bytes.
    pub format: Format,
    /// Archive levels above this document (0 for a plain file).
    pub depth: u32,
    /// The document's bytes, from the first one. Reading errors here are
    /// also recorded by the walker, which reports them after the visitor
    /// returns (the visitor may map them to anything it likes).
    pub reader: &'a mut dyn BufRead,
}

/// What a walk went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Size of the flow file.
    pub packed_bytes: u64,
    /// Bytes produced by decompression (see the module doc).
    pub unpacked_bytes: u64,
    /// Archive entries seen (files and directories, all levels).
    pub entries: u64,
    /// Leaf documents handed to the visitor.
    pub leaves: u64,
    /// Deepest archive level reached.
    pub max_depth_seen: u32,
}

/// Which limit a flow crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    TotalUnpacked,
    Ratio,
    Entries,
    EntryBytes,
}

impl LimitKind {
    fn describe(self) -> &'static str {
        match self {
            LimitKind::TotalUnpacked => "total unpacked size",
            LimitKind::Ratio => "compression ratio",
            LimitKind::Entries => "number of archive entries",
            LimitKind::EntryBytes => "size of one document",
        }
    }
}

/// Why an entry is refused as unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// A `..` path component.
    ParentComponent,
    /// Starts with `/` or `\`.
    AbsolutePath,
    /// Starts with a drive letter such as `C:`.
    DriveLetter,
    /// Empty name or a NUL byte in it.
    BadName,
    SymbolicLink,
    HardLink,
    /// Character or block device, FIFO.
    Device,
    /// GNU sparse file or another entry type quai does not open.
    UnsupportedEntryType,
}

impl UnsafeReason {
    fn describe(self) -> &'static str {
        match self {
            UnsafeReason::ParentComponent => "its name contains '..'",
            UnsafeReason::AbsolutePath => "its name is an absolute path",
            UnsafeReason::DriveLetter => "its name starts with a drive letter",
            UnsafeReason::BadName => "its name is empty or contains a NUL byte",
            UnsafeReason::SymbolicLink => "it is a symbolic link",
            UnsafeReason::HardLink => "it is a hard link",
            UnsafeReason::Device => "it is a device or FIFO entry",
            UnsafeReason::UnsupportedEntryType => {
                "its entry type (e.g. sparse file) is not accepted"
            }
        }
    }

    fn is_name(self) -> bool {
        matches!(
            self,
            UnsafeReason::ParentComponent
                | UnsafeReason::AbsolutePath
                | UnsafeReason::DriveLetter
                | UnsafeReason::BadName
        )
    }
}

/// Why a flow could not be unpacked. `E` is the visitor's own error type.
#[derive(Debug)]
pub enum UnpackError<E> {
    /// A limit was crossed while reading (IRR_TAILLE_F).
    TooLarge {
        path: String,
        limit: LimitKind,
        max: u64,
    },
    /// An entry name or type that could escape a folder or point elsewhere.
    Unsafe { path: String, reason: UnsafeReason },
    /// Truncated or damaged gzip, zip or tar (IRR_SYNTAX).
    Corrupt { path: String, message: String },
    /// A password-protected zip entry.
    Encrypted { path: String },
    /// Archives nested deeper than [`Limits::max_depth`].
    TooDeep { path: String, max_depth: u32 },
    /// An empty flow, or an archive holding no document (IRR_VIDE_F).
    Empty { path: String },
    /// The flow file itself could not be read (quai's side, not the partner's).
    Io(io::Error),
    /// The visitor returned an error; the walk stopped there.
    Visit(E),
}

impl<E> UnpackError<E> {
    /// The French platform's reason code for an inadmissible flow.
    /// `Io` and `Visit` are not the partner's fault: they give `INTERNAL`,
    /// which is not a platform code (retry rather than reject).
    pub fn irr_code(&self) -> &'static str {
        match self {
            UnpackError::TooLarge { .. } => "IRR_TAILLE_F",
            UnpackError::Unsafe { reason, .. } if reason.is_name() => "IRR_NOM_PJ",
            UnpackError::Unsafe { .. } => "IRR_TYPE_F",
            UnpackError::Corrupt { .. } => "IRR_SYNTAX",
            UnpackError::Encrypted { .. } => "IRR_TYPE_F",
            UnpackError::TooDeep { .. } => "IRR_TYPE_F",
            UnpackError::Empty { .. } => "IRR_VIDE_F",
            UnpackError::Io(_) | UnpackError::Visit(_) => "INTERNAL",
        }
    }

    /// True when the flow itself is at fault (reject it; do not retry).
    pub fn is_flow_fault(&self) -> bool {
        !matches!(self, UnpackError::Io(_) | UnpackError::Visit(_))
    }

    /// The entry the error concerns, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            UnpackError::TooLarge { path, .. }
            | UnpackError::Unsafe { path, .. }
            | UnpackError::Corrupt { path, .. }
            | UnpackError::Encrypted { path }
            | UnpackError::TooDeep { path, .. }
            | UnpackError::Empty { path } => Some(path),
            UnpackError::Io(_) | UnpackError::Visit(_) => None,
        }
    }
}

impl UnpackError<Infallible> {
    fn cast<E>(self) -> UnpackError<E> {
        match self {
            UnpackError::TooLarge { path, limit, max } => {
                UnpackError::TooLarge { path, limit, max }
            }
            UnpackError::Unsafe { path, reason } => UnpackError::Unsafe { path, reason },
            UnpackError::Corrupt { path, message } => UnpackError::Corrupt { path, message },
            UnpackError::Encrypted { path } => UnpackError::Encrypted { path },
            UnpackError::TooDeep { path, max_depth } => UnpackError::TooDeep { path, max_depth },
            UnpackError::Empty { path } => UnpackError::Empty { path },
            UnpackError::Io(e) => UnpackError::Io(e),
            UnpackError::Visit(never) => match never {},
        }
    }
}

fn human(n: u64) -> String {
    if n >= 1 << 30 && n & ((1 << 30) - 1) == 0 {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n & ((1 << 20) - 1) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl<E: fmt::Display> fmt::Display for UnpackError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::TooLarge { path, limit, max } => {
                let max = match limit {
                    LimitKind::Ratio => format!("{max}:1"),
                    LimitKind::Entries => max.to_string(),
                    _ => human(*max),
                };
                write!(
                    f,
                    "{path}: the flow exceeds the limit on the {} ({max}); split it into smaller flows",
                    limit.describe()
                )
            }
            UnpackError::Unsafe { path, reason } => {
                write!(f, "{path}: archive entry refused because {}; send plain files with relative names", reason.describe())
            }
            UnpackError::Corrupt { path, message } => {
                write!(f, "{path}: the archive is damaged or truncated ({message}); send the complete file again")
            }
            UnpackError::Encrypted { path } => {
                write!(f, "{path}: the archive entry is password-protected; send it without encryption")
            }
            UnpackError::TooDeep { path, max_depth } => write!(
                f,
                "{path}: archives are nested more than {max_depth} level(s) deep; put the documents in a single archive"
            ),
            UnpackError::Empty { path } => write!(f, "{path}: the flow holds no document"),
            UnpackError::Io(e) => write!(f, "cannot read the flow: {e}"),
            UnpackError::Visit(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for UnpackError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UnpackError::Io(e) => Some(e),
            UnpackError::Visit(e) => Some(e),
            _ => None,
        }
    }
}

type Fault = UnpackError<Infallible>;

/// State shared by all readers of one walk: counters and the first fault met.
struct Ctx<'l> {
    limits: &'l Limits,
    packed: u64,
    total: Cell<u64>,
    entries: Cell<u64>,
    leaves: Cell<u64>,
    deepest: Cell<u32>,
    fault: RefCell<Option<Fault>>,
}

impl Ctx<'_> {
    /// Record a fault (the first one wins) and give the io::Error that
    /// unwinds through the archive crates.
    fn trip(&self, fault: Fault) -> io::Error {
        let msg = fault.to_string();
        let mut slot = self.fault.borrow_mut();
        if slot.is_none() {
            *slot = Some(fault);
        }
        io::Error::other(msg)
    }

    fn take_fault(&self) -> Option<Fault> {
        self.fault.borrow_mut().take()
    }

    fn has_fault(&self) -> bool {
        self.fault.borrow().is_some()
    }

    fn add_unpacked(&self, n: u64, path: &str) -> io::Result<()> {
        let total = self.total.get().saturating_add(n);
        self.total.set(total);
        let l = self.limits;
        if total > l.max_total_unpacked {
            return Err(self.trip(Fault::TooLarge {
                path: path.to_string(),
                limit: LimitKind::TotalUnpacked,
                max: l.max_total_unpacked,
            }));
        }
        if total > l.max_ratio.saturating_mul(self.packed.max(RATIO_FLOOR)) {
            return Err(self.trip(Fault::TooLarge {
                path: path.to_string(),
                limit: LimitKind::Ratio,
                max: l.max_ratio,
            }));
        }
        Ok(())
    }

    fn count_entry(&self, path: &str) -> Result<(), Fault> {
        let n = self.entries.get() + 1;
        self.entries.set(n);
        if n > self.limits.max_entries {
            return Err(Fault::TooLarge {
                path: path.to_string(),
                limit: LimitKind::Entries,
                max: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// The fault recorded by a reader, or this corrupt-archive error.
    fn corrupt(&self, path: &str, e: impl fmt::Display) -> Fault {
        self.take_fault().unwrap_or_else(|| Fault::Corrupt {
            path: path.to_string(),
            message: e.to_string(),
        })
    }
}

/// Output of a decompressor: counted toward the flow's unpacked total; any
/// error from below is recorded as corruption of `path`.
struct Inflated<'c, 'l, R> {
    inner: R,
    ctx: &'c Ctx<'l>,
    path: String,
}

impl<R: Read> Read for Inflated<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.ctx.add_unpacked(n as u64, &self.path)?;
                Ok(n)
            }
            Err(e) => Err(self.ctx.trip(Fault::Corrupt {
                path: self.path.clone(),
                message: truncation_message(&e),
            })),
        }
    }
}

fn truncation_message(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("truncated: {e}")
    } else {
        e.to_string()
    }
}

/// A tar entry's data: ends early → truncated archive.
struct TarData<'c, 'l, R> {
    inner: R,
    ctx: &'c Ctx<'l>,
    path: String,
    expect: u64,
    got: u64,
}

impl<R: Read> Read for TarData<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(0) if self.got < self.expect => Err(self.ctx.trip(Fault::Corrupt {
                path: self.path.clone(),
                message: format!(
                    "truncated: entry ends after {} of {} bytes",
                    self.got, self.expect
                ),
            })),
            Ok(n) => {
                self.got += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.ctx.trip(Fault::Corrupt {
                path: self.path.clone(),
                message: truncation_message(&e),
            })),
        }
    }
}

/// Per-entry byte limit, switched on once the entry's format is known
/// (on for documents and spooled zips, off for streams that are themselves
/// archives, whose entries are limited one by one).
struct EntryLimit<'c, 'l, 'r> {
    inner: &'r mut dyn Read,
    ctx: &'c Ctx<'l>,
    path: String,
    n: u64,
    limit: Option<u64>,
}

impl EntryLimit<'_, '_, '_> {
    fn check(&self) -> io::Result<()> {
        match self.limit {
            Some(max) if self.n > max => Err(self.ctx.trip(Fault::TooLarge {
                path: self.path.clone(),
                limit: LimitKind::EntryBytes,
                max,
            })),
            _ => Ok(()),
        }
    }
}

impl Read for EntryLimit<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        self.check()?;
        Ok(n)
    }
}

/// A tar stream that "seeks" forward by reading: the tar crate skips the
/// padding after each entry through a 32 KiB stack buffer it zeroes every
/// time (a tenth of reading a flow of small invoices); given a seekable
/// reader it seeks instead, and this one reads the bytes into a buffer
/// zeroed once per archive. Only forward seeks from the current position
/// are possible, which is all the tar crate asks for.
struct ForwardSeek<'a> {
    inner: &'a mut dyn Read,
    pos: u64,
    scratch: Box<[u8]>,
}

impl<'a> ForwardSeek<'a> {
    fn new(inner: &'a mut dyn Read) -> Self {
        ForwardSeek {
            inner,
            pos: 0,
            scratch: vec![0u8; 4096].into_boxed_slice(),
        }
    }
}

impl Read for ForwardSeek<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ForwardSeek<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(delta) = to else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a tar stream only skips forward",
            ));
        };
        let mut amt = u64::try_from(delta).map_err(|_| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "a tar stream only skips forward",
            )
        })?;
        while amt > 0 {
            let n = amt.min(self.scratch.len() as u64) as usize;
            let n = self.inner.read(&mut self.scratch[..n])?;
            if n == 0 {
                // The tar crate's own skip says the same.
                return Err(io::Error::other("unexpected EOF during skip"));
            }
            amt -= n as u64;
            self.pos += n as u64;
        }
        Ok(self.pos)
    }
}

/// A read buffer over a zip file that survives seeks landing in what it
/// holds. The zip crate seeks to each entry's local header and asks for its
/// position although the entries follow one another: over a bare file that
/// is about ten system calls per entry (a third of the time of a 2 KB
/// invoice); here one read serves every entry the buffer holds.
struct SeekBuf<R> {
    inner: R,
    buf: Box<[u8]>,
    /// File offset of `buf[0]`; the file itself stands at `start + len`.
    start: u64,
    pos: usize,
    len: usize,
}

impl<R: Read + Seek> SeekBuf<R> {
    fn new(inner: R) -> Self {
        SeekBuf {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            start: 0,
            pos: 0,
            len: 0,
        }
    }
}

impl<R: Read + Seek> Read for SeekBuf<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            self.start += self.len as u64;
            self.pos = 0;
            self.len = 0;
            self.len = self.inner.read(&mut self.buf)?;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekBuf<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(t) => t,
            SeekFrom::Current(d) => (self.start + self.pos as u64)
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?,
            SeekFrom::End(d) => {
                let t = self.inner.seek(SeekFrom::End(d))?;
                self.start = t;
                self.pos = 0;
                self.len = 0;
                return Ok(t);
            }
        };
        if target >= self.start && target - self.start <= self.len as u64 {
            self.pos = (target - self.start) as usize;
        } else {
            self.inner.seek(SeekFrom::Start(target))?;
            self.start = target;
            self.pos = 0;
            self.len = 0;
        }
        Ok(target)
    }
}

/// A reader whose first bytes (up to [`SNIFF_LEN`]) were read ahead to
/// detect its format, then read on through the same buffer. The buffers
/// are kept per thread for the next entries: a fresh one per archive entry
/// was zeroed before its first read (16 KiB for each small invoice).
struct Peeked<R> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[..prefix]` is the sniffed prefix (until the first refill).
    prefix: usize,
    pos: usize,
    end: usize,
}

/// The read buffer of one [`Peeked`] (at least [`SNIFF_LEN`]).
const PEEK_BUF: usize = 16 * 1024;
/// Buffers kept per thread (an entry nests a few readers at most).
const PEEK_KEEP: usize = 8;

thread_local! {
    static PEEK_BUFFERS: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<R: Read> Peeked<R> {
    fn new(mut inner: R) -> io::Result<Self> {
        let mut buf = PEEK_BUFFERS
            .with(|b| b.borrow_mut().pop())
            .unwrap_or_else(|| vec![0u8; PEEK_BUF.max(SNIFF_LEN)].into_boxed_slice());
        let mut filled = 0;
        while filled < SNIFF_LEN {
            match inner.read(&mut buf[filled..SNIFF_LEN]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    give_back(buf);
                    return Err(e);
                }
            }
        }
        Ok(Peeked {
            inner,
            buf,
            prefix: filled,
            pos: 0,
            end: filled,
        })
    }

    /// The bytes read ahead (before any other read).
    fn prefix(&self) -> &[u8] {
        &self.buf[..self.prefix]
    }

    fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

fn give_back(buf: Box<[u8]>) {
    let _ = PEEK_BUFFERS.try_with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < PEEK_KEEP {
            b.push(buf);
        }
    });
}

impl<R> Drop for Peeked<R> {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.buf));
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Peeked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.end {
            self.prefix = 0;
            self.pos = 0;
            self.end = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

/// Read what the visitor left of an entry and drop it, from the reader's
/// own buffer (`io::copy` to a sink zeroed an 8 KiB buffer per entry).
fn drain(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let n = match r.fill_buf() {
            Ok(b) => b.len(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        r.consume(n);
    }
}

/// Check an archive entry name; returns it cleaned of leading `./`.
fn check_name(raw: &[u8]) -> Result<String, UnsafeReason> {
    if raw.is_empty() || raw.contains(&0) {
        return Err(UnsafeReason::BadName);
    }
    let name = String::from_utf8_lossy(raw);
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(UnsafeReason::AbsolutePath);
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(UnsafeReason::DriveLetter);
    }
    let mut parts = Vec::new();
    for comp in name.split(['/', '\\']) {
        match comp {
            ".." => return Err(UnsafeReason::ParentComponent),
            "" | "." => {}
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(UnsafeReason::BadName);
    }
    Ok(parts.join("/"))
}

/// The name of what a gzip holds: the name stored in its header when safe,
/// else the outer name without `.gz` (`.tgz` → `.tar`).
fn gunzipped_name(outer: &str, header_name: Option<&[u8]>) -> String {
    if let Some(raw) = header_name {
        if let Ok(name) = check_name(raw) {
            if !name.contains('/') {
                return name;
            }
        }
    }
    let base = outer.rsplit('/').next().unwrap_or(outer);
    let lower = base.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix(".tgz").map(|_| &base[..base.len() - 4]) {
        return format!("{stem}.tar");
    }
    for suffix in [".gz", ".gzip", ".z"] {
        if lower.ends_with(suffix) && base.len() > suffix.len() {
            return base[..base.len() - suffix.len()].to_string();
        }
    }
    format!("{base}.unzipped")
}

/// Walk a flow stored at `path`, named `name` (the name the partner gave it),
/// calling `visit` once per leaf document, in archive order.
///
/// The visitor receives an [`Entry`] whose reader must not be kept beyond
/// the call. Whatever it leaves unread is drained afterwards (so limits and
/// truncation are checked on every byte). If it returns `Err(e)` the walk
/// stops with [`UnpackError::Visit`]; if a limit or corruption was met while
/// it read, that error is returned instead. A flow that is not an archive is
/// one leaf. An empty file, or archives holding no document, give
/// [`UnpackError::Empty`].
pub fn walk<E>(
    path: &Path,
    name: &str,
    limits: &Limits,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), E>,
) -> Result<WalkSummary, UnpackError<E>> {
    let mut file = File::open(path).map_err(UnpackError::Io)?;
    let packed = file.metadata().map_err(UnpackError::Io)?.len();
    let ctx = Ctx {
        limits,
        packed,
        total: Cell::new(0),
        entries: Cell::new(0),
        leaves: Cell::new(0),
        deepest: Cell::new(0),
        fault: RefCell::new(None),
    };
    if packed == 0 {
        return Err(UnpackError::Empty {
            path: name.to_string(),
        });
    }
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(UnpackError::Io)?;
    file.seek(SeekFrom::Start(0)).map_err(UnpackError::Io)?;
    let mut walker = Walker { ctx: &ctx, visit };
    let result = if sniff(&head) == Format::Zip {
        match walker.enter(name, 0) {
            Ok(level) => walker.zip(file, name, level),
            Err(e) => Err(e),
        }
    } else {
        walker.handle(&mut file, name, 0)
    };
    result?;
    if ctx.leaves.get() == 0 {
        return Err(UnpackError::Empty {
            path: name.to_string(),
        });
    }
    Ok(WalkSummary {
        packed_bytes: packed,
        unpacked_bytes: ctx.total.get(),
        entries: ctx.entries.get(),
        leaves: ctx.leaves.get(),
        max_depth_seen: ctx.deepest.get(),
    })
}

struct Walker<'c, 'l, 'v, E> {
    ctx: &'c Ctx<'l>,
    visit: &'v mut dyn FnMut(Entry<'_>) -> Result<(), E>,
}

impl<E> Walker<'_, '_, '_, E> {
    fn fault_or(&self, e: UnpackError<E>) -> UnpackError<E> {
        match self.ctx.take_fault() {
            Some(f) => f.cast(),
            None => e,
        }
    }

    fn enter(&self, path: &str, level: u32) -> Result<u32, UnpackError<E>> {
        let next = level + 1;
        if next > self.ctx.limits.max_depth {
            return Err(UnpackError::TooDeep {
                path: path.to_string(),
                max_depth: self.ctx.limits.max_depth,
            });
        }
        if next > self.ctx.deepest.get() {
            self.ctx.deepest.set(next);
        }
        Ok(next)
    }

    /// One stream at `level`: an archive to open or a leaf to visit.
    fn handle(&mut self, src: &mut dyn Read, path: &str, level: u32) -> Result<(), UnpackError<E>> {
        let ctx = self.ctx;
        let limited = EntryLimit {
            inner: src,
            ctx,
            path: path.to_string(),
            n: 0,
            limit: None,
        };
        let mut peeked = match Peeked::new(limited) {
            Ok(p) => p,
            Err(e) => return Err(self.fault_or(UnpackError::Io(e))),
        };
        let format = sniff(peeked.prefix());
        match format {
            Format::Gzip => {
                let next = self.enter(path, level)?;
                self.gzip(&mut peeked, path, next)
            }
            Format::Tar => {
                let next = self.enter(path, level)?;
                self.tar(&mut peeked, path, next)
            }
            Format::Zip => {
                let next = self.enter(path, level)?;
                peeked.inner_mut().limit = Some(ctx.limits.max_entry_bytes);
                peeked
                    .inner_mut()
                    .check()
                    .map_err(|e| self.fault_or(UnpackError::Io(e)))?;
                let mut spool = tempfile::tempfile().map_err(UnpackError::Io)?;
                if let Err(e) = io::copy(&mut peeked, &mut spool) {
                    return Err(self.fault_or(UnpackError::Io(e)));
                }
                spool.seek(SeekFrom::Start(0)).map_err(UnpackError::Io)?;
                self.zip(spool, path, next)
            }
            _ => {
                peeked.inner_mut().limit = Some(ctx.limits.max_entry_bytes);
                peeked
                    .inner_mut()
                    .check()
                    .map_err(|e| self.fault_or(UnpackError::Io(e)))?;
                ctx.leaves.set(ctx.leaves.get() + 1);
                let outcome = (self.visit)(Entry {
                    path,
                    format,
                    depth: level,
                    reader: &mut peeked,
                });
                if let Some(f) = ctx.take_fault() {
                    return Err(f.cast());
                }
                outcome.map_err(UnpackError::Visit)?;
                if let Err(e) = drain(&mut peeked) {
                    return Err(self.fault_or(UnpackError::Io(e)));
                }
                Ok(())
            }
        }
    }

    fn gzip(&mut self, src: &mut dyn Read, path: &str, level: u32) -> Result<(), UnpackError<E>> {
        let ctx = self.ctx;
        let decoder = MultiGzDecoder::new(BufReader::new(src));
        let inflated = Inflated {
            inner: decoder,
            ctx,
            path: path.to_string(),
        };
        let mut peeked = match Peeked::new(inflated) {
            Ok(p) => p,
            Err(e) => return Err(self.fault_or(UnpackError::Io(e))),
        };
        if sniff(peeked.prefix()) == Format::Tar {
            // tar.gz: one archive, one level.
            return self.tar(&mut peeked, path, level);
        }
        let inner_name = gunzipped_name(
            path,
            peeked.inner_mut().inner.header().and_then(|h| h.filename()),
        );
        let inner_path = format!("{path}/{inner_name}");
        self.handle(&mut peeked, &inner_path, level)
    }

    fn tar(&mut self, src: &mut dyn Read, path: &str, level: u32) -> Result<(), UnpackError<E>> {
        let ctx = self.ctx;
        let mut archive = tar::Archive::new(ForwardSeek::new(src));
        let entries = match archive.entries_with_seek() {
            Ok(e) => e.raw(true),
            Err(e) => return Err(ctx.corrupt(path, e).cast()),
        };
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => return Err(ctx.corrupt(path, e).cast()),
            };
            let kind = entry.header().entry_type();
            // Metadata entries that describe the next one.
            if kind.is_gnu_longname() || kind.is_pax_local_extensions() || kind.is_gnu_longlink() {
                let data = match read_tar_meta(&mut entry, path) {
                    Ok(d) => d,
                    Err(f) => return Err(f.cast()),
                };
                if kind.is_gnu_longname() {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    long_name = Some(data[..end].to_vec());
                } else if kind.is_pax_local_extensions() {
                    for (key, value) in parse_pax(&data) {
                        match key {
                            b"path" => pax_path = Some(value.to_vec()),
                            b"size" => {
                                pax_size = Some(
                                    std::str::from_utf8(value)
                                        .ok()
                                        .and_then(|s| s.parse().ok())
                                        .unwrap_or(u64::MAX),
                                )
                            }
                            _ => {}
                        }
                    }
                }
                continue;
            }
            if kind.is_pax_global_extensions() {
                continue;
            }
            let raw_name = pax_path
                .take()
                .or_else(|| long_name.take())
                .unwrap_or_else(|| entry.path_bytes().into_owned());
            long_name = None;
            let size = entry.size();
            let display = format!("{path}/{}", String::from_utf8_lossy(&raw_name));
            if let Some(ps) = pax_size.take() {
                if ps != size {
                    return Err(UnpackError::Corrupt {
                        path: display,
                        message: format!("PAX size {ps} disagrees with header size {size}"),
                    });
                }
            }
            if let Err(f) = ctx.count_entry(&display) {
                return Err(f.cast());
            }
            let name = check_name(&raw_name).map_err(|reason| UnpackError::Unsafe {
                path: display.clone(),
                reason,
            })?;
            let entry_path = format!("{path}/{name}");
            use tar::EntryType as T;
            match kind {
                T::Regular | T::Continuous => {}
                T::Directory => continue,
                T::Symlink => {
                    return Err(UnpackError::Unsafe {
                        path: entry_path,
                        reason: UnsafeReason::SymbolicLink,
                    })
                }
                T::Link => {
                    return Err(UnpackError::Unsafe {
                        path: entry_path,
                        reason: UnsafeReason::HardLink,
                    })
                }
                T::Char | T::Block | T::Fifo => {
                    return Err(UnpackError::Unsafe {
                        path: entry_path,
                        reason: UnsafeReason::Device,
                    })
                }
                _ => {
                    return Err(UnpackError::Unsafe {
                        path: entry_path,
                        reason: UnsafeReason::UnsupportedEntryType,
                    })
                }
            }
            let mut data = TarData {
                inner: &mut entry,
                ctx,
                path: entry_path.clone(),
                expect: size,
                got: 0,
            };
            self.handle(&mut data, &entry_path, level)?;
        }
        if ctx.has_fault() {
            return Err(ctx
                .take_fault()
                .map(Fault::cast)
                .unwrap_or(UnpackError::Empty {
                    path: path.to_string(),
                }));
        }
        Ok(())
    }

    fn zip(&mut self, file: File, path: &str, level: u32) -> Result<(), UnpackError<E>> {
        let ctx = self.ctx;
        let mut file = file;
        // Refuse on the claimed count before the zip crate loads the central
        // directory into memory (refusing on a header is safe; trusting one is not).
        match zip_claimed_entries(&mut file) {
            Ok(Some(n)) if ctx.entries.get().saturating_add(n) > ctx.limits.max_entries => {
                return Err(UnpackError::TooLarge {
                    path: path.to_string(),
                    limit: LimitKind::Entries,
                    max: ctx.limits.max_entries,
                })
            }
            Ok(_) => {}
            Err(e) => return Err(UnpackError::Io(e)),
        }
        let mut archive = match zip::ZipArchive::new(SeekBuf::new(file)) {
            Ok(a) => a,
            Err(e) => {
                let message = match e {
                    zip::result::ZipError::InvalidArchive(m) => {
                        format!("truncated or not a zip: {m}")
                    }
                    other => other.to_string(),
                };
                return Err(UnpackError::Corrupt {
                    path: path.to_string(),
                    message,
                });
            }
        };
        for i in 0..archive.len() {
            let (raw_name, encrypted, is_dir, is_symlink) = match archive.by_index_raw(i) {
                Ok(f) => (
                    f.name_raw().to_vec(),
                    f.encrypted(),
                    f.is_dir(),
                    f.is_symlink(),
                ),
                Err(e) => return Err(ctx.corrupt(path, e).cast()),
            };
            let display = format!("{path}/{}", String::from_utf8_lossy(&raw_name));
            if let Err(f) = ctx.count_entry(&display) {
                return Err(f.cast());
            }
            let name = check_name(&raw_name).map_err(|reason| UnpackError::Unsafe {
                path: display.clone(),
                reason,
            })?;
            let entry_path = format!("{path}/{name}");
            if encrypted {
                return Err(UnpackError::Encrypted { path: entry_path });
            }
            if is_symlink {
                return Err(UnpackError::Unsafe {
                    path: entry_path,
                    reason: UnsafeReason::SymbolicLink,
                });
            }
            if is_dir {
                continue;
            }
            let zf = match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => return Err(ctx.corrupt(&entry_path, e).cast()),
            };
            let mut inflated = Inflated {
                inner: zf,
                ctx,
                path: entry_path.clone(),
            };
            self.handle(&mut inflated, &entry_path, level)?;
        }
        Ok(())
    }
}

/// Read a GNU long name / PAX header body, refusing oversized ones.
fn read_tar_meta(entry: &mut dyn Read, path: &str) -> Result<Vec<u8>, Fault> {
    let mut data = Vec::new();
    let res = entry.take(MAX_TAR_META + 1).read_to_end(&mut data);
    match res {
        Err(e) => Err(Fault::Corrupt {
            path: path.to_string(),
            message: truncation_message(&e),
        }),
        Ok(_) if data.len() as u64 > MAX_TAR_META => Err(Fault::Corrupt {
            path: path.to_string(),
            message: format!("tar extended header larger than {MAX_TAR_META} bytes"),
        }),
        Ok(_) => Ok(data),
    }
}

/// PAX records: `<len> <key>=<value>\n`.
fn parse_pax(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((&record[..eq], &record[eq + 1..]));
        }
        rest = &rest[len..];
    }
    out
}

/// Entry count claimed by a zip's end-of-central-directory record (zip64
/// aware). `None` when no record is found (the zip crate then reports it).
fn zip_claimed_entries(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.by_ref().take(tail_len).read_to_end(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    let Some(pos) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return Ok(None);
    };
    let eocd = &tail[pos..];
    if eocd.len() < 22 {
        return Ok(None);
    }
    let count16 = u16::from_le_bytes([eocd[10], eocd[11]]);
    if count16 != 0xFFFF {
        return Ok(Some(count16 as u64));
    }
    // zip64: the locator sits just before the EOCD and points to the zip64 record.
    if pos < 20 || &tail[pos - 20..pos - 16] != b"PK\x06\x07" {
        return Ok(Some(count16 as u64));
    }
    let loc = &tail[pos - 20..pos];
    let mut off = [0u8; 8];
    off.copy_from_slice(&loc[8..16]);
    let rec_off = u64::from_le_bytes(off);
    if rec_off.saturating_add(56) > len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(rec_off))?;
    let mut rec = [0u8; 56];
    file.read_exact(&mut rec)?;
    file.seek(SeekFrom::Start(0))?;
    if &rec[..4] != b"PK\x06\x06" {
        return Ok(None);
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rec[32..40]);
    Ok(Some(u64::from_le_bytes(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_buffer_reads_like_the_file() {
        // Bytes 0..200_000 (more than the 64 KB buffer), read after seeks
        // inside and outside what is buffered, from the start, the current
        // position and the end.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = SeekBuf::new(io::Cursor::new(data.clone()));
        let mut got = [0u8; 100];
        for to in [
            SeekFrom::Start(10),
            SeekFrom::Current(5),
            SeekFrom::Current(-50),
            SeekFrom::Start(150_000),
            SeekFrom::Current(-100_000),
            SeekFrom::End(-100),
            SeekFrom::Start(65_500),
        ] {
            let at = r.seek(to).unwrap() as usize;
            assert_eq!(r.stream_position().unwrap() as usize, at);
            r.read_exact(&mut got).unwrap();
            assert_eq!(&got[..], &data[at..at + 100], "{to:?}");
        }
        assert!(r.seek(SeekFrom::Current(-1_000_000)).is_err());
        let mut rest = Vec::new();
        r.seek(SeekFrom::Start(199_990)).unwrap();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[199_990..]);
    }

    #[test]
    fn names() {
        assert_eq!(check_name(b"a/b.xml").unwrap(), "a/b.xml");
        assert_eq!(check_name(b"./a.xml").unwrap(), "a.xml");
        assert_eq!(
            check_name(b"../evil.xml"),
            Err(UnsafeReason::ParentComponent)
        );
        assert_eq!(
            check_name(b"a/../../evil.xml"),
            Err(UnsafeReason::ParentComponent)
        );
        assert_eq!(
            check_name(b"a\\..\\evil.xml"),
            Err(UnsafeReason::ParentComponent)
        );
        assert_eq!(check_name(b"/etc/passwd"), Err(UnsafeReason::AbsolutePath));
        assert_eq!(check_name(b"\\windows"), Err(UnsafeReason::AbsolutePath));
        assert_eq!(check_name(b"C:evil"), Err(UnsafeReason::DriveLetter));
        assert_eq!(check_name(b""), Err(UnsafeReason::BadName));
        assert_eq!(check_name(b"a\0b"), Err(UnsafeReason::BadName));
    }

    #[test]
    fn gz_names() {
        assert_eq!(gunzipped_name("f/x.xml.gz", None), "x.xml");
        assert_eq!(gunzipped_name("f/x.TGZ", None), "x.tar");
        assert_eq!(gunzipped_name("x", None), "x.unzipped");
        assert_eq!(gunzipped_name("x.gz", Some(b"inv.xml")), "inv.xml");
        assert_eq!(gunzipped_name("x.gz", Some(b"../inv.xml")), "x");
    }

    #[test]
    fn pax_records() {
        let data = b"18 path=a/b/c.xml\n11 size=42\n";
        let recs = parse_pax(data);
        assert_eq!(
            recs,
            vec![
                (&b"path"[..], &b"a/b/c.xml"[..]),
                (&b"size"[..], &b"42"[..])
            ]
        );
        assert!(parse_pax(b"999 x=y\n").is_empty());
        assert!(parse_pax(b"garbage").is_empty());
    }
}
